// cilium-operator's own metrics under upstream's names (prefix cilium_operator_, labels as in
// upstream operator/metrics and operator/identitygc), one set per Registry.
import { Counter, Gauge, type Registry } from 'prom-client';

export const OPERATOR_METRICS_PREFIX = 'cilium_operator_';

export interface OperatorMetrics {
  /** Identities alive and deleted at the end of a GC run; status alive|deleted, identity_type crd. */
  identityGCEntries: Gauge<'status' | 'identity_type'>;
  /** GC runs so far; outcome success|fail. Upstream keeps it as a gauge. */
  identityGCRuns: Gauge<'outcome' | 'identity_type'>;
  /** Seconds the last run took. */
  identityGCLatency: Gauge<'outcome' | 'identity_type'>;
  /** CiliumEndpoints deleted by the GC; outcome success|fail. */
  endpointGCObjects: Counter<'outcome'>;
}

const perRegistry = new WeakMap<Registry, OperatorMetrics>();

export function operatorMetrics(registry: Registry): OperatorMetrics {
  let m = perRegistry.get(registry);
  if (m !== undefined) return m;
  const registers = [registry];
  m = {
    identityGCEntries: new Gauge({
      name: `${OPERATOR_METRICS_PREFIX}identity_gc_entries`,
      help: 'The number of alive and deleted identities at the end of a garbage collector run',
      labelNames: ['status', 'identity_type'] as const,
      registers,
    }),
    identityGCRuns: new Gauge({
      name: `${OPERATOR_METRICS_PREFIX}identity_gc_runs`,
      help: 'The number of times identity garbage collector has run',
      labelNames: ['outcome', 'identity_type'] as const,
      registers,
    }),
    identityGCLatency: new Gauge({
      name: `${OPERATOR_METRICS_PREFIX}identity_gc_latency`,
      help: 'The duration of the last successful identity GC run',
      labelNames: ['outcome', 'identity_type'] as const,
      registers,
    }),
    endpointGCObjects: new Counter({
      name: `${OPERATOR_METRICS_PREFIX}endpoint_gc_objects`,
      help: 'The number of times endpoint objects have been garbage-collected',
      labelNames: ['outcome'] as const,
      registers,
    }),
  };
  perRegistry.set(registry, m);
  return m;
}
