/**
 * The tamper-evidence status of the range shown (GET /audit/verify with the search's
 * From and To): intact, or broken with the first break's period and kind in words. Not
 * by colour alone: the status is a word, and broken is also a heavy border and a mark.
 */
import type { FirstBreak, Verification } from './api';
import { byId, el, utcText } from './dom';

const REASON_WORDS: Readonly<Record<string, string>> = {
  digest_mismatch: 'its digest does not match its content',
  bad_signature: 'its signature does not verify',
  two_seals: 'two different seals claim the period',
};

function reasonText(b: FirstBreak): string {
  if (b.reason === 'other_key') return `; signed with another key${b.key_id ? ` (${b.key_id})` : ''}`;
  return b.reason ? `; ${REASON_WORDS[b.reason] ?? b.reason}` : '';
}

const KIND_WORDS: Readonly<Record<string, string>> = {
  missing: 'a sealed record is missing (deleted after it was sealed)',
  altered: 'a sealed record was changed after it was sealed',
  extra: 'a record that was never sealed has been added',
  digest_missing: "a period's seal (its signed digest) is missing",
  digest_invalid: "a period's seal does not verify (changed, or signed with another key)",
};

function periodText(period: unknown): string {
  if (typeof period === 'number' || /^\d+$/.test(String(period))) return `${utcText(new Date(Number(period)).toISOString())} UTC`;
  return `${utcText(period)}`;
}

function rangeText(from: string | undefined, to: string | undefined): string {
  if (!from && !to) return 'the whole audit trail';
  if (from && to) return `${utcText(from)} to ${utcText(to)} UTC`;
  return from ? `from ${utcText(from)} UTC on` : `up to ${utcText(to)} UTC`;
}

export function showChecking(from: string | undefined, to: string | undefined): void {
  const box = byId('verify-status');
  box.className = 'verify checking';
  box.replaceChildren(el('p', { text: `Checking the seals of ${rangeText(from, to)}…` }));
}

export function showVerification(v: Verification, from: string | undefined, to: string | undefined): void {
  const box = byId('verify-status');
  const range = rangeText(from, to);
  const counts = `${v.periods_checked} sealed period${v.periods_checked === 1 ? '' : 's'}, ${v.records_checked} record${v.records_checked === 1 ? '' : 's'} checked${
    v.records_unsealed ? `; ${v.records_unsealed} recent record${v.records_unsealed === 1 ? '' : 's'} not sealed yet` : ''
  }${v.records_in_flight ? `; ${v.records_in_flight} in flight` : ''}${v.key_id ? `; key ${v.key_id}` : ''}.`;
  if (v.status === 'intact') {
    box.className = 'verify intact';
    box.replaceChildren(
      el('p', {}, el('strong', { text: '✓ Intact: ' }), `nothing in ${range} was changed, removed or added since it was sealed.`),
      el('p', { text: counts }),
    );
    return;
  }
  box.className = 'verify broken';
  const b = v.first_break;
  const where = b
    ? `First break: period starting ${periodText(b.period)}${b.chain ? ` (chain ${b.chain})` : ''}: ${KIND_WORDS[b.kind] ?? b.kind} (kind: ${b.kind})` +
      (b.event_id ? `, event ${b.event_id}` : '') +
      (b.seq !== undefined ? `, sequence number ${b.seq}` : '') +
      reasonText(b) +
      '.'
    : 'The gateway did not say where.';
  box.replaceChildren(
    el('p', {}, el('strong', { text: '✗ Broken: ' }), `the audit trail in ${range} does not match its seals.`),
    el('p', { text: where }),
    el('p', { text: counts }),
  );
}

export function showVerifyProblem(text: string): void {
  const box = byId('verify-status');
  box.className = 'verify unknown';
  box.replaceChildren(el('p', { text: `Not checked: ${text}` }));
}
