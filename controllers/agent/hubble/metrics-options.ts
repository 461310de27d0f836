// The hubble-metrics option as upstream reads it (pkg/hubble/metrics/api): metrics separated by
// spaces (ConfigMap) or commas (flag), each `name` or `name:key=value;key=value`. The context
// options name what the `source`/`destination` labels hold (identity, namespace, pod, ..., the
// first non-empty of a `|` list) and labelsContext adds fixed labels (source_pod, ...).

/** Metrics cilium-ts produces from its L3/L4 flows. */
export const FLOW_METRICS = ['drop', 'flow', 'flows-to-world', 'icmp', 'policy', 'port-distribution', 'tcp'] as const;
/** Upstream's L7 metrics: accepted so upstream configurations load, empty while no L7 flows exist. */
export const L7_METRICS = ['dns', 'http', 'httpV2', 'kafka'] as const;

export type FlowMetricName = (typeof FLOW_METRICS)[number];

export const CONTEXT_IDENTIFIERS = ['identity', 'namespace', 'pod', 'pod-short', 'pod-name', 'dns', 'ip', 'reserved-identity', 'workload-name', 'app'] as const;
export type ContextIdentifier = (typeof CONTEXT_IDENTIFIERS)[number];

/** labelsContext labels in upstream's order, which is the order they appear in. */
export const CONTEXT_LABELS = [
  'source_ip',
  'source_pod',
  'source_namespace',
  'source_workload',
  'source_app',
  'destination_ip',
  'destination_pod',
  'destination_namespace',
  'destination_workload',
  'destination_app',
  'traffic_direction',
] as const;
export type ContextLabel = (typeof CONTEXT_LABELS)[number];

export interface ContextOptions {
  source: ContextIdentifier[];
  sourceIngress?: ContextIdentifier[];
  sourceEgress?: ContextIdentifier[];
  destination: ContextIdentifier[];
  destinationIngress?: ContextIdentifier[];
  destinationEgress?: ContextIdentifier[];
  labels: ContextLabel[];
}

export interface MetricConfig {
  name: string;
  /** Option keys lower-cased, as upstream compares them. */
  options: Map<string, string>;
  context: ContextOptions;
}

export class MetricsOptionError extends Error {
  constructor(metric: string, reason: string) {
    super(`hubble-metrics: ${metric}: ${reason}`);
    this.name = 'MetricsOptionError';
  }
}

const KNOWN = new Set<string>([...FLOW_METRICS, ...L7_METRICS]);

function startsMetric(piece: string): boolean {
  return KNOWN.has(piece.split(':', 1)[0]!);
}

/** The metric specs of the option text; a comma inside a metric's options (labelsContext=a,b) stays in it. */
export function splitMetrics(text: string): string[] {
  const out: string[] = [];
  for (const token of text.split(/\s+/).filter((t) => t !== '')) {
    for (const piece of token.split(',')) {
      if (piece === '') continue;
      if (out.length > 0 && !startsMetric(piece) && token.includes(':')) out[out.length - 1] += `,${piece}`;
      else out.push(piece);
    }
  }
  return out;
}

function identifiers(metric: string, key: string, value: string): ContextIdentifier[] {
  return value.split('|').map((v) => {
    const id = v.toLowerCase();
    if (!(CONTEXT_IDENTIFIERS as readonly string[]).includes(id)) throw new MetricsOptionError(metric, `${key}: unknown context ${JSON.stringify(v)} (one of ${CONTEXT_IDENTIFIERS.join(', ')})`);
    return id as ContextIdentifier;
  });
}

// Option keys (lower-cased) of the context identifier lists, and the field each sets.
const CONTEXT_KEYS: Readonly<Record<string, 'source' | 'sourceIngress' | 'sourceEgress' | 'destination' | 'destinationIngress' | 'destinationEgress'>> = {
  sourcecontext: 'source',
  sourceingresscontext: 'sourceIngress',
  sourceegresscontext: 'sourceEgress',
  destinationcontext: 'destination',
  destinationingresscontext: 'destinationIngress',
  destinationegresscontext: 'destinationEgress',
};

function parseContext(metric: string, options: Map<string, string>): ContextOptions {
  const ctx: ContextOptions = { source: [], destination: [], labels: [] };
  for (const [key, value] of options) {
    const field = CONTEXT_KEYS[key];
    if (field !== undefined) ctx[field] = identifiers(metric, key, value);
    else if (key === 'labelscontext') {
      const wanted = value.split(',');
      for (const l of wanted) if (!(CONTEXT_LABELS as readonly string[]).includes(l)) throw new MetricsOptionError(metric, `invalid labelsContext value: ${l}`);
      ctx.labels = CONTEXT_LABELS.filter((l) => wanted.includes(l));
    }
  }
  return ctx;
}

/** The metrics the option enables; throws naming the metric and what is wrong. */
export function parseMetricsOption(text: string): MetricConfig[] {
  const seen = new Set<string>();
  return splitMetrics(text).map((spec) => {
    const colon = spec.indexOf(':');
    const name = colon < 0 ? spec : spec.slice(0, colon);
    if (!KNOWN.has(name)) throw new MetricsOptionError(name, `unknown metric (one of ${[...KNOWN].join(', ')})`);
    if (seen.has(name)) throw new MetricsOptionError(name, 'given twice');
    seen.add(name);
    const options = new Map<string, string>();
    for (const option of colon < 0 ? [] : spec.slice(colon + 1).split(';')) {
      if (option === '') continue;
      const eq = option.indexOf('=');
      options.set((eq < 0 ? option : option.slice(0, eq)).toLowerCase(), eq < 0 ? '' : option.slice(eq + 1));
    }
    return { name, options, context: parseContext(name, options) };
  });
}

/** The option check: undefined when valid, else the reason. */
export function checkMetricsOption(text: string): string | undefined {
  try {
    parseMetricsOption(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
