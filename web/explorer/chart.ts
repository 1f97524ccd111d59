/**
 * The results over time, by outcome: transactions per hour (or per day over a long range),
 * one line per outcome, from the summary API (group_by=hour,outcome), so the chart counts
 * every matching transaction, not only the page shown. uPlot draws it on a canvas; its
 * numbers are also given as a table for people who cannot see the chart.
 */
import uPlot from 'uplot';
import type { Summary } from './api';
import { byId, el } from './dom';
import { OUTCOME_LINES } from './outcomes';

export type Bucket = 'hour' | 'day';

/** A bucket key as the summary gives it (ISO text, ClickHouse's "YYYY-MM-DD hh:mm:ss", a date, or epoch seconds) → epoch ms, UTC. */
export function bucketTime(value: unknown): number {
  if (typeof value === 'number') return value < 1e11 ? value * 1000 : value;
  const s = String(value);
  if (/^\d+$/.test(s)) return bucketTime(Number(s));
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (m) return Date.parse(`${m[1]}T${m[2] ?? '00:00:00'}${m[3] ?? 'Z'}`);
  return Date.parse(s);
}

/** An axis tick as UTC, 24-hour: "13:00", with the date where a day starts ("12-03 00:00"); days as "2026-12-03". */
function axisTime(seconds: number, bucket: Bucket): string {
  const iso = new Date(seconds * 1000).toISOString();
  if (bucket === 'day') return iso.slice(0, 10);
  const time = iso.slice(11, 16);
  return time === '00:00' ? `${iso.slice(5, 10)} ${time}` : time;
}

/** Counts are whole: the y axis ticks at whole steps only. */
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];

let plot: uPlot | null = null;
let resizeWatch: ResizeObserver | null = null;

export function clearChart(note: string): void {
  plot?.destroy();
  plot = null;
  byId('chart').replaceChildren();
  byId('chart').setAttribute('aria-label', 'No chart');
  byId('chart-table').replaceChildren();
  byId('chart-note').textContent = note;
}

export function drawChart(summary: Summary, bucket: Bucket): void {
  const step = bucket === 'hour' ? 3600_000 : 86_400_000;
  const outcomes = [...new Set(summary.groups.map((g) => g.key.outcome))].sort();
  const counts = new Map<number, Map<string, number>>();
  for (const g of summary.groups) {
    const t = bucketTime(g.key[bucket]);
    if (Number.isNaN(t)) continue;
    const at = counts.get(t) ?? new Map<string, number>();
    at.set(g.key.outcome, (at.get(g.key.outcome) ?? 0) + g.transactions);
    counts.set(t, at);
  }
  if (counts.size === 0) {
    clearChart('Nothing to chart: no transaction matches.');
    return;
  }
  const known = [...counts.keys()].sort((a, b) => a - b);
  // Every bucket from the first to the last, quiet ones as 0 (a gap in traffic is news too), within reason.
  const span = (known[known.length - 1] - known[0]) / step;
  const times = span <= 2000 ? Array.from({ length: span + 1 }, (_, i) => known[0] + i * step) : known;
  const data: uPlot.AlignedData = [times.map((t) => t / 1000), ...outcomes.map((o) => times.map((t) => counts.get(t)?.get(o) ?? 0))];

  const box = byId('chart');
  plot?.destroy();
  box.replaceChildren();
  const width = () => Math.max(320, box.clientWidth);
  plot = new uPlot(
    {
      width: width(),
      height: 260,
      // UTC, like the rest of the page.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: {
        // The buckets' own span and half a bucket of room each side (uPlot widens a single point to 1,000 days).
        x: { time: true, range: () => [times[0] / 1000 - step / 2000, times[times.length - 1] / 1000 + step / 2000] },
        y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil(max * 1.1))] },
      },
      // No drag-to-zoom: the range is the search's; narrow it with From and To.
      cursor: { drag: { x: false, y: false } },
      axes: [
        { values: (_u, splits) => splits.map((t) => axisTime(t, bucket)), space: 70 },
        { label: `Transactions per ${bucket}`, size: 60, incrs: WHOLE_STEPS },
      ],
      series: [
        { label: bucket === 'hour' ? 'Hour (UTC)' : 'Day (UTC)' },
        ...outcomes.map((o) => ({
          label: o,
          stroke: OUTCOME_LINES[o]?.colour ?? '#444',
          dash: OUTCOME_LINES[o]?.dash,
          width: 2,
          points: { show: true, size: 9, fill: OUTCOME_LINES[o]?.colour ?? '#444' },
        })),
      ],
    },
    data,
    box,
  );
  resizeWatch?.disconnect();
  resizeWatch = new ResizeObserver(() => plot?.setSize({ width: width(), height: 260 }));
  resizeWatch.observe(box);

  const totals = outcomes.map((o, i) => `${o} ${(data[i + 1] as number[]).reduce((a, b) => a + b, 0)}`);
  box.setAttribute('role', 'img');
  box.setAttribute(
    'aria-label',
    `Transactions per ${bucket} by outcome, ${times.length} ${bucket}s; totals: ${totals.join(', ')}. The numbers are in the table below.`,
  );
  byId('chart-note').textContent = summary.truncated ? 'The summary was cut short (too many groups): the chart shows the busiest ones only.' : '';
  chartTable(times, outcomes, data, bucket);
}

function chartTable(times: number[], outcomes: string[], data: uPlot.AlignedData, bucket: Bucket): void {
  const head = el(
    'tr',
    {},
    el('th', { scope: 'col', text: `${bucket === 'hour' ? 'Hour' : 'Day'} (UTC)` }),
    ...outcomes.map((o) => el('th', { scope: 'col', text: o })),
  );
  const rows = times
    .map((t, i) => ({ t, values: outcomes.map((_, j) => (data[j + 1] as number[])[i]) }))
    .filter((r) => r.values.some((v) => v > 0))
    .map((r) =>
      el(
        'tr',
        {},
        el('th', {
          scope: 'row',
          text: new Date(r.t)
            .toISOString()
            .slice(0, bucket === 'hour' ? 16 : 10)
            .replace('T', ' '),
        }),
        ...r.values.map((v) => el('td', { class: 'number', text: String(v) })),
      ),
    );
  byId('chart-table').replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
}
