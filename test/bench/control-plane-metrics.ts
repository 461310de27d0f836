// Where the agent's time went in a phase of the control-plane bench, from its own metrics: how
// many endpoint regenerations and reconciles it ran and how long the reconciles took, plus how
// busy this process's one thread was (the agent shares it with the bench driver).
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Registry } from 'prom-client';

interface Sample {
  value: number;
  labels: Record<string, unknown>;
  metricName?: string;
}

/** Sum of a metric's series (or of one series of a histogram) whose labels include `labels`. */
async function sum(registry: Registry, metric: string, labels: Record<string, string>, series = metric): Promise<number> {
  const m = await registry.getSingleMetric(metric)?.get();
  const values = (m?.values ?? []) as Sample[];
  return values
    .filter((v) => (v.metricName ?? metric) === series && Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((total, v) => total + v.value, 0);
}

type Counters = Record<string, number>;

async function read(registry: Registry): Promise<Counters> {
  const reconciles = (controller: string) => sum(registry, 'controller_runtime_reconcile_total', { controller });
  const reconcileSeconds = (controller: string) =>
    sum(registry, 'controller_runtime_reconcile_time_seconds', { controller }, 'controller_runtime_reconcile_time_seconds_sum');
  return {
    endpoint_regenerations: await sum(registry, 'cilium_endpoint_regenerations_total', {}),
    policy_reconciles: await reconciles('policy'),
    policy_reconcile_s: await reconcileSeconds('policy'),
    policy_queue_wait_s: await sum(registry, 'workqueue_queue_duration_seconds', { name: 'policy' }, 'workqueue_queue_duration_seconds_sum'),
    ipcache_reconciles: await reconciles('ipcache'),
    ipcache_reconcile_s: await reconcileSeconds('ipcache'),
  };
}

/** Counts from `start` on; `finish` gives the differences and the event loop's busy share. */
export async function agentWork(registry: Registry): Promise<{ finish(): Promise<Counters> }> {
  const before = await read(registry);
  const elu: EventLoopUtilization = performance.eventLoopUtilization();
  return {
    async finish() {
      const after = await read(registry);
      const out: Counters = {};
      for (const [k, v] of Object.entries(after)) out[k] = Math.round((v - (before[k] ?? 0)) * 10) / 10;
      out.event_loop_busy = Math.round(performance.eventLoopUtilization(elu).utilization * 100) / 100;
      return out;
    },
  };
}

/**
 * A V8 CPU profile of this process from now until the returned stop, written to `file` (open it in
 * Chrome DevTools). Started only once the agent's programs are loaded: the profiler's SIGPROF
 * interrupts the BPF verifier, which then fails the load with EAGAIN.
 */
export async function startCpuProfile(file: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await writeFile(file, JSON.stringify(profile));
  };
}
