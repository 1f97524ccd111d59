/**
 * What the page tells people: progress and results in a polite live region (read out
 * when the reader is idle), problems in an alert region (read out at once). Both are
 * plain text, in words.
 */
import { byId } from './dom';

export function say(text: string): void {
  byId('status').textContent = text;
}

export function problem(text: string): void {
  const box = byId('problem');
  box.textContent = text;
  box.hidden = text === '';
}

export function clearProblem(): void {
  problem('');
}
