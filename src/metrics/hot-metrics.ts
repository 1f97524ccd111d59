import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request hot path. prom-client hashes the label set
 * on every inc()/observe(), even through a child from labels(); here a child is a plain
 * object found once per label set and updated with number arithmetic. They register in
 * the same prom-client Registry through its metric interface (`get()`), so the
 * exposition format is prom-client's own.
 */

type Labels = Record<string, string>;
interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}
interface MetricObject {
  name: string;
  help: string;
  type: string;
  values: Sample[];
  aggregator: 'sum';
}

abstract class HotMetric<Child> {
  protected readonly children = new Map<string, { labels: Labels; child: Child }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  protected abstract create(): Child;

  /** The child for these label values (in labelNames order); `key` must identify them uniquely. */
  child(key: string, ...values: string[]): Child {
    let entry = this.children.get(key);
    if (entry === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]));
      entry = { labels, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  reset(): void {
    this.children.clear();
  }
}

export class HotCounter extends HotMetric<{ value: number }> {
  readonly type = 'counter';
  protected create() {
    return { value: 0 };
  }
  get(): MetricObject {
    const values = [...this.children.values()].map(({ labels, child }) => ({ labels, value: child.value }));
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

export interface HistogramChild {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class HotHistogram extends HotMetric<HistogramChild> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }
  protected create(): HistogramChild {
    return { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
  }
  /** Records a value (seconds) in a child. */
  observe(child: HistogramChild, value: number): void {
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        child.counts[i]++;
        break;
      }
    }
    child.sum += value;
    child.count++;
  }
  get(): MetricObject {
    const values: Sample[] = [];
    for (const { labels, child } of this.children.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += child.counts[i];
        values.push({ labels: { ...labels, le: String(le) }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: child.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: child.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}

/** A counter whose value is kept elsewhere (a pipeline's own tally) and read when scraped. */
export class ReadCounter {
  readonly type = 'counter';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number,
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }
  get(): MetricObject {
    return { name: this.name, help: this.help, type: 'counter', values: [{ labels: {}, value: this.read() }], aggregator: 'sum' };
  }
  reset(): void {}
}
