import { Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../../src/metrics/hot-metrics';

describe('hot metrics', () => {
  test("a counter child is found once per label set and exposed in prom-client's format", async () => {
    const registry = new Registry();
    const counter = new HotCounter('x_requests_total', 'Requests.', ['a', 'b'], registry);
    counter.child('1|2', '1', '2').value += 3;
    counter.child('1|2', '1', '2').value++;
    counter.child('3|4', '3', '4').value++;
    const text = await registry.metrics();
    expect(text).toContain('# TYPE x_requests_total counter');
    expect(text).toContain('x_requests_total{a="1",b="2"} 4');
    expect(text).toContain('x_requests_total{a="3",b="4"} 1');
  });

  test('a histogram exposes cumulative buckets, +Inf, sum and count', async () => {
    const registry = new Registry();
    const histogram = new HotHistogram('x_seconds', 'Durations.', ['i'], [0.01, 0.1, 1], registry);
    const child = histogram.child('k', 'k');
    for (const v of [0.005, 0.05, 0.05, 0.5, 5]) histogram.observe(child, v);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE x_seconds histogram');
    expect(text).toContain('x_seconds_bucket{i="k",le="0.01"} 1');
    expect(text).toContain('x_seconds_bucket{i="k",le="0.1"} 3');
    expect(text).toContain('x_seconds_bucket{i="k",le="1"} 4');
    expect(text).toContain('x_seconds_bucket{i="k",le="+Inf"} 5');
    expect(text).toMatch(/x_seconds_sum\{i="k"\} 5\.60*\d*\n/);
    expect(text).toContain('x_seconds_count{i="k"} 5');
  });
});
