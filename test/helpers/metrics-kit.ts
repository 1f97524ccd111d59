import { request } from 'node:http';

/** A Prometheus text exposition as series → value, the series written as `name{a="x",b="y"}` (labels in exposition order). */
export function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    series.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return series;
}

/** The metric family names a live exposition declares (# TYPE lines), histogram and summary parts included. */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]);
    if (m[2] === 'histogram') for (const part of ['_bucket', '_sum', '_count']) names.add(m[1] + part);
    if (m[2] === 'summary') for (const part of ['_sum', '_count']) names.add(m[1] + part);
  }
  return names;
}

/** GET a URL on loopback, resolving with status and body text. */
export function getText(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
