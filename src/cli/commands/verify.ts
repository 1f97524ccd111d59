import { Command } from 'commander';
import { EXIT, failedError } from '../cli-errors';
import { addCommonOptions, clientFor, out, printJson, type CommonOptions } from '../common';
import { addFilterOptions, filterQuery, TIME_FILTERS } from '../filters';
import { Progress, rate } from '../progress';
import { count, readableTime, safeCell } from '../table';

interface Break {
  chain?: unknown;
  period?: unknown;
  kind?: unknown;
  event_id?: unknown;
  seq?: unknown;
}

export interface VerifyAnswer {
  status: 'intact' | 'broken';
  periods_checked?: number;
  records_checked?: number;
  records_unsealed?: number;
  records_in_flight?: number;
  first_break: Break | null;
  /** Per chain (one per gateway DATA_DIR sharing the store). */
  chains?: Array<{ chain?: unknown; instance?: unknown; status?: unknown; periods_checked?: number; records_checked?: number }>;
  from?: string;
  to?: string;
  key_id?: string;
}

/** What each kind of break means, for the person reading it. */
const KINDS: Record<string, string> = {
  missing: 'a sealed record is not in the store (deleted)',
  altered: "a record's content differs from what was sealed",
  extra: 'the store holds a record no seal covers (inserted)',
  digest_missing: "a period's signed digest is gone",
  digest_invalid: "a period's digest does not check out (altered, or signed with another key)",
};

const text = (v: unknown) => safeCell(v === null || v === undefined ? '' : String(v));

/** A period's start (ISO text, or epoch milliseconds) as a readable UTC time. */
function periodTime(period: unknown): string {
  const ms = typeof period === 'number' ? period : typeof period === 'string' && /^\d+$/.test(period) ? Number(period) : null;
  const iso = ms !== null && Number.isFinite(ms) ? new Date(ms).toISOString() : period;
  return typeof iso === 'string' ? `${readableTime(iso)} UTC` : text(period);
}

/** The verdict for people: one headline, then the facts, aligned. */
export function describeVerify(v: VerifyAnswer, colour: boolean): string {
  const paint = (code: string, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const range = `${v.from ? readableTime(v.from) : 'the start'} to ${v.to ? readableTime(v.to) : 'now'} UTC`;
  const facts: Array<[string, string]> = [
    ['range', range],
    ['periods', `${count(v.periods_checked)} checked`],
    ['records', `${count(v.records_checked)} checked${v.records_unsealed ? `, ${count(v.records_unsealed)} not sealed yet (checked by a later run)` : ''}`],
  ];
  if (v.records_in_flight) facts.push(['in flight', `${count(v.records_in_flight)} (transactions not finished yet: no final record to check)`]);
  if (v.key_id) facts.push(['key id', text(v.key_id)]);
  // Several gateways on one store: each one's chain and its own verdict.
  if (v.chains !== undefined && v.chains.length > 1) {
    for (const c of v.chains) {
      facts.push([
        'chain',
        `${text(c.chain)} (${text(c.instance)}): ${text(c.status)}, ${count(c.periods_checked)} period${c.periods_checked === 1 ? '' : 's'}, ${count(c.records_checked)} record${c.records_checked === 1 ? '' : 's'}`,
      ]);
    }
  }
  let head: string;
  if (v.status === 'intact') {
    head =
      !v.records_checked && !v.periods_checked
        ? paint('32;1', 'Intact') + ', but nothing in range is sealed yet: run it again after the next seal (AUDIT_SEAL_PERIOD_MS)'
        : paint('32;1', 'Intact') + ': every record in range matches its sealed, signed period';
  } else {
    const b = v.first_break ?? {};
    const kind = text(b.kind);
    head = paint('31;1', 'BROKEN') + `: ${kind}${KINDS[kind] ? `, ${KINDS[kind]}` : ''}`;
    facts.unshift(['first break', `the period from ${periodTime(b.period)}, chain ${text(b.chain)}`]);
    if (b.event_id !== undefined && b.event_id !== null) facts.splice(1, 0, ['event id', text(b.event_id)]);
    if (b.seq !== undefined && b.seq !== null) facts.splice(1, 0, ['seq', text(b.seq)]);
  }
  const width = Math.max(...facts.map(([k]) => k.length));
  return `${head}\n${facts.map(([k, v2]) => `  ${k.padEnd(width)}  ${v2}`).join('\n')}\n`;
}

/** `audit verify`: GET /audit/verify; exit status 1 when the trail is broken. */
export function verifyCommand(): Command {
  const cmd = new Command('verify').description('check the audit trail against its signed seals over a time range; exit status 1 if it is broken');
  addFilterOptions(cmd, TIME_FILTERS);
  addCommonOptions(cmd, { json: 'the API\'s answer as it is: {"status":"intact"|"broken",...}', progress: true });
  cmd.action(async (options: CommonOptions) => {
    const query = filterQuery(options as Record<string, unknown>, TIME_FILTERS);
    const progress = new Progress(Progress.wanted(options.progress), 'verifying');
    // The API answers once, at the end: the line shows the time passing until then.
    const ticker = setInterval(() => progress.update(null), 250);
    let answer: VerifyAnswer;
    try {
      progress.update(null);
      answer = await clientFor(options).getJson<VerifyAnswer>('/audit/verify', query);
    } finally {
      clearInterval(ticker);
      progress.end();
    }
    if (answer.status !== 'intact' && answer.status !== 'broken')
      throw failedError(`the gateway's verify answer has no status intact or broken: is it this version?`);
    if (options.json) await printJson(answer);
    else {
      await out(describeVerify(answer, process.stdout.isTTY === true && !process.env.NO_COLOR));
      // The rate is worth a line when it was asked for, or when the wait was long enough to wonder.
      if ((options.progress === true || (Progress.wanted(options.progress) && progress.elapsedMs >= 2000)) && typeof answer.records_checked === 'number') {
        process.stderr.write(`(${(progress.elapsedMs / 1000).toFixed(1)} s, ${rate(answer.records_checked, progress.elapsedMs)})\n`);
      }
    }
    if (answer.status === 'broken') process.exitCode = EXIT.BROKEN;
  });
  return cmd;
}
