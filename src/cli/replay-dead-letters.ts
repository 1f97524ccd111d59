import { replayDeadLetters } from './dead-letter-replay';

/** npm run audit:replay-dead-letters: the older name of `spine-gateway audit replay-dead-letters`, kept for runbooks that use it. */
replayDeadLetters().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`replay-dead-letters: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
