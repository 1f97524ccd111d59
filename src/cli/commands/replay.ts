import { Command } from 'commander';
import { CliError, EXIT } from '../cli-errors';
import { replayDeadLetters } from '../dead-letter-replay';

/** `audit replay-dead-letters`: the dead-letter runbook's command (README, "Dead letters"); works on DATA_DIR directly, not through the admin API. */
export function replayCommand(): Command {
  return new Command('replay-dead-letters')
    .description(
      "insert the dead-letter files under DATA_DIR/dead-letter into the audit store, with the gateway's settings (environment); exit status 1 if any file was kept",
    )
    .action(async () => {
      try {
        process.exitCode = await replayDeadLetters();
      } catch (err) {
        // As the script (npm run audit:replay-dead-letters) has always done: 1, with the reason.
        throw new CliError((err as Error).message, EXIT.REPLAY_FAILED);
      }
    });
}
