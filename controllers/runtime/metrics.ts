// Workqueue and reconcile metrics under controller-runtime's names, kept in the Registry the
// caller passes so the agent and the operator each expose their own.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What a queue reports at scrape time about the items its workers hold. */
export interface InFlight {
  /** Seconds of work done so far by items still being processed. */
  unfinishedSeconds: number;
  /** Seconds the longest-running item has been processed. */
  longestSeconds: number;
}

export interface RuntimeMetrics {
  workqueue: {
    depth: Gauge<'name'>;
    adds: Counter<'name'>;
    retries: Counter<'name'>;
    queueDuration: Histogram<'name'>;
    workDuration: Histogram<'name'>;
    /** Each queue registers how to read its in-flight work; read at scrape time. */
    inFlight: Map<string, () => InFlight>;
  };
  reconcile: {
    total: Counter<'controller' | 'result'>;
    errors: Counter<'controller'>;
    terminalErrors: Counter<'controller'>;
    time: Histogram<'controller'>;
    activeWorkers: Gauge<'controller'>;
    maxConcurrent: Gauge<'controller'>;
  };
}

// client-go's workqueue buckets: 10 ns to 1000 s by factors of ten.
const workqueueBuckets = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);

// controller-runtime's reconcile_time_seconds buckets.
const reconcileBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0,
  3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

// One set per registry: registering a name twice in one registry throws.
const perRegistry = new WeakMap<Registry, RuntimeMetrics>();

function create(registry: Registry): RuntimeMetrics {
  const registers = [registry];
  const name = ['name'] as const;
  const inFlight = new Map<string, () => InFlight>();
  const inFlightGauge = (metric: string, help: string, pick: (f: InFlight) => number) =>
    new Gauge({
      name: metric,
      help,
      labelNames: name,
      registers,
      collect() {
        for (const [queue, read] of inFlight) this.set({ name: queue }, pick(read()));
      },
    });
  inFlightGauge(
    'workqueue_unfinished_work_seconds',
    'How many seconds of work has been done that is in progress and hasn\'t been observed by work_duration.',
    (f) => f.unfinishedSeconds,
  );
  inFlightGauge(
    'workqueue_longest_running_processor_seconds',
    'How many seconds has the longest running processor for workqueue been running.',
    (f) => f.longestSeconds,
  );
  const controller = ['controller'] as const;
  return {
    workqueue: {
      depth: new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: name, registers }),
      adds: new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: name, registers }),
      retries: new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: name, registers }),
      queueDuration: new Histogram({
        name: 'workqueue_queue_duration_seconds',
        help: 'How long in seconds an item stays in workqueue before being requested',
        labelNames: name,
        buckets: workqueueBuckets,
        registers,
      }),
      workDuration: new Histogram({
        name: 'workqueue_work_duration_seconds',
        help: 'How long in seconds processing an item from workqueue takes.',
        labelNames: name,
        buckets: workqueueBuckets,
        registers,
      }),
      inFlight,
    },
    reconcile: {
      total: new Counter({
        name: 'controller_runtime_reconcile_total',
        help: 'Total number of reconciliations per controller',
        labelNames: ['controller', 'result'] as const,
        registers,
      }),
      errors: new Counter({
        name: 'controller_runtime_reconcile_errors_total',
        help: 'Total number of reconciliation errors per controller',
        labelNames: controller,
        registers,
      }),
      terminalErrors: new Counter({
        name: 'controller_runtime_terminal_reconcile_errors_total',
        help: 'Total number of terminal reconciliation errors per controller',
        labelNames: controller,
        registers,
      }),
      time: new Histogram({
        name: 'controller_runtime_reconcile_time_seconds',
        help: 'Length of time per reconciliation per controller',
        labelNames: controller,
        buckets: reconcileBuckets,
        registers,
      }),
      activeWorkers: new Gauge({
        name: 'controller_runtime_active_workers',
        help: 'Number of currently used workers per controller',
        labelNames: controller,
        registers,
      }),
      maxConcurrent: new Gauge({
        name: 'controller_runtime_max_concurrent_reconciles',
        help: 'Maximum number of concurrent reconciles per controller',
        labelNames: controller,
        registers,
      }),
    },
  };
}

export function runtimeMetrics(registry: Registry): RuntimeMetrics {
  let m = perRegistry.get(registry);
  if (m === undefined) {
    m = create(registry);
    perRegistry.set(registry, m);
  }
  return m;
}

/**
 * The current value of one series of `metric` whose labels include `labels`; for a histogram
 * `metric` names the family and `series` the sample (e.g. its _count).
 */
export async function seriesValue(registry: Registry, metric: string, labels: Record<string, string>, series = metric): Promise<number | undefined> {
  const m = await registry.getSingleMetric(metric)?.get();
  const values = (m?.values ?? []) as { value: number; labels: Record<string, unknown>; metricName?: string }[];
  return values.find((v) => (v.metricName ?? metric) === series && Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}
