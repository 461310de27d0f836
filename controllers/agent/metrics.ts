// cilium-agent's own metrics under upstream's names (prefix cilium_, Documentation/observability/
// metrics.rst), one set per Registry. Gauges that describe state (endpoints by state, identities
// by type) are read at scrape time from whoever holds that state.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MetricCount } from '../../datapath/types.js';
import { reasonName } from '../cli/text/datapath-names.js';

export interface AgentMetrics {
  /** Every endpoint regeneration (create, restore, relabel, policy change); outcome success|fail. */
  endpointRegenerations: Counter<'outcome'>;
  /** Rules currently loaded (upstream counts rules, not policy objects). */
  policy: Gauge;
  policyMaxRevision: Gauge;
  /** Policy changes the loop took in (success) or refused (fail). */
  policyChange: Counter<'outcome'>;
  /** Seconds from the agent seeing a policy change to the last affected endpoint enforcing it. */
  policyImplementationDelay: Histogram<'source'>;
}

export interface AgentStateReaders {
  /** Endpoint count per upstream endpoint state. */
  endpointStates?: () => Record<string, number>;
  /** Identity count per upstream identity type (cluster_local, node_local, reserved). */
  identities?: () => Record<string, number>;
}

const perRegistry = new WeakMap<Registry, AgentMetrics>();

// From 1 ms: one agent implements a policy in milliseconds, which coarser buckets would hide.
const delayBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function agentMetrics(registry: Registry): AgentMetrics {
  let m = perRegistry.get(registry);
  if (m !== undefined) return m;
  const registers = [registry];
  m = {
    endpointRegenerations: new Counter({
      name: 'cilium_endpoint_regenerations_total',
      help: 'Count of all endpoint regenerations that have completed',
      labelNames: ['outcome'] as const,
      registers,
    }),
    policy: new Gauge({ name: 'cilium_policy', help: 'Number of policies currently loaded', registers }),
    policyMaxRevision: new Gauge({ name: 'cilium_policy_max_revision', help: 'Highest policy revision number in the agent', registers }),
    policyChange: new Counter({ name: 'cilium_policy_change_total', help: 'Number of policy changes by outcome', labelNames: ['outcome'] as const, registers }),
    policyImplementationDelay: new Histogram({
      name: 'cilium_policy_implementation_delay',
      help: "Time in seconds between a policy change and it being fully deployed into the datapath, labeled by the policy's source",
      labelNames: ['source'] as const,
      buckets: delayBuckets,
      registers,
    }),
  };
  perRegistry.set(registry, m);
  return m;
}

/** Registers the scrape-time gauges (cilium_endpoint_state, cilium_identity); once per registry. */
export function registerStateGauges(registry: Registry, readers: AgentStateReaders): void {
  const gauges = [
    ['cilium_endpoint_state', 'Count of all endpoints, tagged by different endpoint states', 'endpoint_state', readers.endpointStates],
    ['cilium_identity', 'Number of identities currently allocated', 'type', readers.identities],
  ] as const;
  for (const [name, help, label, read] of gauges) {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, count] of Object.entries(read?.() ?? {})) this.set({ [label]: value }, count);
      },
    });
  }
}

// Upstream's drop codes: "Invalid packet" (2) and everything from 130 up; lower codes are forward
// reasons (success, interface, ...).
const DROP_INVALID = 2;
const DROP_MIN = 130;

function isDrop(reason: number): boolean {
  return reason === DROP_INVALID || reason >= DROP_MIN;
}

/**
 * Registers cilium_{drop,forward}_{count,bytes}_total, read from the datapath's metrics map at
 * scrape time and summed per label set (file and line stay out of the labels, as upstream keeps
 * them). A map that cannot be read keeps the last values and reports through `onError`.
 */
export function registerDatapathCounters(registry: Registry, read: () => MetricCount[], onError: (err: unknown) => void): void {
  const counters = [
    ['cilium_drop_count_total', 'Total dropped packets, tagged by drop reason and ingress/egress direction', true, 'count'],
    ['cilium_drop_bytes_total', 'Total dropped bytes, tagged by drop reason and ingress/egress direction', true, 'bytes'],
    ['cilium_forward_count_total', 'Total forwarded packets, tagged by ingress/egress direction', false, 'count'],
    ['cilium_forward_bytes_total', 'Total forwarded bytes, tagged by ingress/egress direction', false, 'bytes'],
  ] as const;
  for (const [name, help, drops, field] of counters) {
    new Counter({
      name,
      help,
      labelNames: drops ? ['reason', 'direction'] : ['direction'],
      registers: [registry],
      collect() {
        let counts: MetricCount[];
        try {
          counts = read();
        } catch (err) {
          onError(err);
          return;
        }
        this.reset();
        for (const c of counts) {
          if (isDrop(c.reason) !== drops) continue;
          const direction = c.direction.toUpperCase();
          this.inc(drops ? { reason: reasonName(c.reason), direction } : { direction }, c[field]);
        }
      },
    });
  }
}
