// Hubble's flow metrics (upstream pkg/hubble/metrics): the handlers hubble-metrics enables count
// every flow the observer decodes under upstream's names and labels, with the context labels
// their options ask for; lost_events_total and the history's counters are always there. They
// live in their own registry, served on hubble-metrics-server (:9965) apart from the agent's.
import { Counter, Registry } from 'prom-client';
import { icmpSummary } from '../../hubble/decode.js';
import type { Endpoint, Flow, LostEventSource } from '../../hubble/flow-types.js';
import { observationPointName, policyMatchName } from '../../cli/text/datapath-names.js';
import { parseLabel } from '../labels/labels.js';
import { type ContextIdentifier, type ContextOptions, FLOW_METRICS, type FlowMetricName, type MetricConfig, parseMetricsOption } from './metrics-options.js';

const PREFIX = 'hubble_';
// Upstream monitor message types (pkg/monitor/api).
const TYPE_DROP = 1;
const TYPE_TRACE = 4;
const TYPE_POLICY_VERDICT = 5;
const IDENTITY_HOST = 1;
const KUBE_APISERVER_LABEL = 'reserved:kube-apiserver';
const WORLD_LABEL = 'reserved:world';
const APP_LABELS = ['k8s:app.kubernetes.io/name', 'k8s:k8s-app', 'k8s:app'];
const SHORT_POD = /^(.+?)(-[a-z0-9]+){1,2}$/;

/** upstream v1.FlowProtocol for L3/L4 flows. */
export function flowProtocol(flow: Flow): string {
  const l4 = flow.l4;
  if (l4?.TCP) return 'TCP';
  if (l4?.UDP) return 'UDP';
  if (l4?.ICMPv4) return 'ICMPv4';
  if (l4?.SCTP) return 'SCTP';
  return [TYPE_DROP, TYPE_TRACE, TYPE_POLICY_VERDICT].includes(flow.event_type.type) ? 'Unknown L4' : 'Unknown flow';
}

function appOf(labels: readonly string[]): string {
  for (const label of labels) {
    for (const app of APP_LABELS) {
      if (label.startsWith(`${app}=`)) {
        const value = parseLabel(label).value;
        if (value !== '') return value;
      }
    }
  }
  return '';
}

function reservedOf(labels: readonly string[]): string {
  if (labels.includes(KUBE_APISERVER_LABEL)) return KUBE_APISERVER_LABEL;
  return labels.find((l) => l.startsWith('reserved:')) ?? '';
}

function withNamespace(ep: Endpoint, name: string): string {
  return ep.namespace !== '' ? `${ep.namespace}/${name}` : name;
}

function contextValue(id: ContextIdentifier, flow: Flow, source: boolean): string {
  const ep = source ? flow.source : flow.destination;
  switch (id) {
    case 'namespace':
      return ep.namespace;
    case 'identity':
      return ep.labels.join(',');
    case 'pod':
      return withNamespace(ep, ep.pod_name);
    case 'pod-short':
      return withNamespace(ep, ep.pod_name.replace(SHORT_POD, '$1'));
    case 'pod-name':
      return ep.pod_name;
    case 'dns':
      // No DNS names are known to L3/L4 flows.
      return '';
    case 'ip':
      return source ? flow.IP.source : flow.IP.destination;
    case 'reserved-identity':
      return reservedOf(ep.labels);
    case 'workload-name':
      return ep.workloads[0]?.name ?? '';
    case 'app':
      return appOf(ep.labels);
  }
}

function firstNonEmpty(ids: readonly ContextIdentifier[], flow: Flow, source: boolean): string {
  for (const id of ids) {
    const v = contextValue(id, flow, source);
    if (v !== '') return v;
  }
  return '';
}

function labelContextValue(label: ContextOptions['labels'][number], flow: Flow): string {
  if (label === 'traffic_direction') return flow.traffic_direction === 'TRAFFIC_DIRECTION_UNKNOWN' ? 'unknown' : flow.traffic_direction.toLowerCase();
  const source = label.startsWith('source_');
  const ep = source ? flow.source : flow.destination;
  switch (label.slice(label.indexOf('_') + 1)) {
    case 'ip':
      return source ? flow.IP.source : flow.IP.destination;
    case 'pod':
      return ep.pod_name;
    case 'namespace':
      return ep.namespace;
    case 'workload':
      return ep.workloads[0]?.name ?? '';
    default:
      return appOf(ep.labels);
  }
}

/** The context label names, in upstream's order: labelsContext ones, then source, then destination. */
export function contextLabelNames(ctx: ContextOptions): string[] {
  return [...ctx.labels, ...(ctx.source.length > 0 ? ['source'] : []), ...(ctx.destination.length > 0 ? ['destination'] : [])];
}

/** The context label values of a flow in contextLabelNames' order, as upstream's GetLabelValues (direction-specific contexts override). */
function contextValueList(ctx: ContextOptions, flow: Flow): string[] {
  const out = ctx.labels.map((l) => labelContextValue(l, flow));
  const dir = flow.traffic_direction;
  if (ctx.source.length > 0) {
    const ids = (dir === 'INGRESS' ? ctx.sourceIngress : dir === 'EGRESS' ? ctx.sourceEgress : undefined) ?? ctx.source;
    out.push(firstNonEmpty(ids, flow, true));
  }
  if (ctx.destination.length > 0) {
    const ids = (dir === 'INGRESS' ? ctx.destinationIngress : dir === 'EGRESS' ? ctx.destinationEgress : undefined) ?? ctx.destination;
    out.push(firstNonEmpty(ids, flow, false));
  }
  return out;
}

/** The context labels of a flow by name. */
export function contextLabelValues(ctx: ContextOptions, flow: Flow): Record<string, string> {
  const values = contextValueList(ctx, flow);
  return Object.fromEntries(contextLabelNames(ctx).map((name, i) => [name, values[i]!]));
}

/**
 * A counter counted per flow. prom-client's inc(labels) builds a hash string of the label object,
 * looks it up and validates every name on each call, which doubled a flow's cost; here a flow
 * walks nested Maps by its label values (strings the flow already holds, so their hashes are
 * cached) to its series' cell, and the cells' pending counts fold into the prom-client counter
 * when the registry collects it. There is one cell per series the counter itself keeps, so the
 * cache grows no further than the exported metric does.
 */
class FlowCounter {
  private readonly root = new Map<string, unknown>();
  private readonly pending: Cell[] = [];
  private readonly counter: Counter;

  /** `labelNames` in the order the exported series list them. */
  constructor(registry: Registry, name: string, help: string, private readonly labelNames: readonly string[]) {
    const flush = () => this.flush();
    this.counter = new Counter({ name: `${PREFIX}${name}`, help, labelNames, registers: [registry], collect: flush });
  }

  /** Counts one flow for the series of `values`, given in labelNames' order. */
  inc(values: readonly string[]): void {
    let node = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    let cell = node.get(values[last]!) as Cell | undefined;
    if (cell === undefined) {
      cell = { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])), count: 0 };
      node.set(values[last]!, cell);
    }
    if (cell.count === 0) this.pending.push(cell);
    cell.count++;
  }

  private flush(): void {
    for (const cell of this.pending) {
      this.counter.inc(cell.labels, cell.count);
      cell.count = 0;
    }
    this.pending.length = 0;
  }
}

interface Cell {
  readonly labels: Record<string, string>;
  count: number;
}

type Handler = (flow: Flow) => void;

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter {
  return new Counter({ name: `${PREFIX}${name}`, help, labelNames, registers: [registry] });
}

function flowTypeAndSubtype(flow: Flow): [string, string] {
  switch (flow.event_type.type) {
    case TYPE_DROP:
      return ['Drop', ''];
    case TYPE_TRACE:
      return ['Trace', observationPointName(flow.event_type.sub_type)];
    case TYPE_POLICY_VERDICT:
      return ['PolicyVerdict', ''];
    default:
      return ['Unknown', String(flow.event_type.type)];
  }
}

function forwarded(flow: Flow): boolean {
  return flow.verdict === 'FORWARDED' || flow.verdict === 'REDIRECTED';
}

function destinationPort(flow: Flow): [string, number] | undefined {
  const l4 = flow.l4;
  if (l4?.TCP) return ['TCP', l4.TCP.destination_port];
  if (l4?.UDP) return ['UDP', l4.UDP.destination_port];
  if (l4?.SCTP) return ['SCTP', l4.SCTP.destination_port];
  if (l4?.ICMPv4) return ['ICMPv4', 0];
  return undefined;
}

function makeHandler(registry: Registry, name: FlowMetricName, config: MetricConfig): Handler {
  const ctx = config.context;
  const ctxNames = contextLabelNames(ctx);
  const values = (flow: Flow) => contextValueList(ctx, flow);
  switch (name) {
    case 'flow': {
      const c = new FlowCounter(registry, 'flows_processed_total', 'Total number of flows processed', ['protocol', 'type', 'subtype', 'verdict', ...ctxNames]);
      return (flow) => {
        const [type, subtype] = flowTypeAndSubtype(flow);
        c.inc([flowProtocol(flow), type, subtype, flow.verdict, ...values(flow)]);
      };
    }
    case 'drop': {
      const c = new FlowCounter(registry, 'drop_total', 'Number of drops', [...ctxNames, 'reason', 'protocol']);
      return (flow) => {
        if (flow.verdict !== 'DROPPED') return;
        c.inc([...values(flow), String(flow.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'), flowProtocol(flow)]);
      };
    }
    case 'tcp': {
      const c = new FlowCounter(registry, 'tcp_flags_total', 'TCP flag occurrences', ['family', ...ctxNames, 'flag']);
      return (flow) => {
        const tcp = flow.l4?.TCP;
        if (!forwarded(flow) || tcp === undefined) return;
        const base = [flow.IP.ipVersion, ...values(flow)];
        if (tcp.flags.FIN) c.inc([...base, 'FIN']);
        if (tcp.flags.SYN) c.inc([...base, tcp.flags.ACK ? 'SYN-ACK' : 'SYN']);
        if (tcp.flags.RST) c.inc([...base, 'RST']);
      };
    }
    case 'port-distribution': {
      const c = new FlowCounter(registry, 'port_distribution_total', 'Numbers of packets distributed by destination port', ['protocol', 'port', ...ctxNames]);
      return (flow) => {
        // A flow not known to be a request says nothing about the service port.
        if (!forwarded(flow) || flow.is_reply?.value !== false) return;
        const port = destinationPort(flow);
        if (port) c.inc([port[0], String(port[1]), ...values(flow)]);
      };
    }
    case 'icmp': {
      const c = new FlowCounter(registry, 'icmp_total', 'Number of ICMP messages', ['family', 'type', ...ctxNames]);
      return (flow) => {
        const icmp = flow.l4?.ICMPv4;
        if (icmp) c.inc(['IPv4', icmpSummary(icmp.type, icmp.code), ...values(flow)]);
      };
    }
    case 'policy': {
      const c = new FlowCounter(registry, 'policy_verdicts_total', 'Total number of Cilium network policy verdicts', ['direction', 'match', 'action', ...ctxNames]);
      return (flow) => {
        // The host may always reach local endpoints; its verdicts are noise.
        if (flow.event_type.type !== TYPE_POLICY_VERDICT || flow.source.identity === IDENTITY_HOST) return;
        c.inc([flow.traffic_direction.toLowerCase(), policyMatchName(flow.policy_match_type ?? 0).toLowerCase(), flow.verdict.toLowerCase(), ...values(flow)]);
      };
    }
    case 'flows-to-world': {
      const anyDrop = config.options.has('any-drop');
      const withPort = config.options.has('port');
      const synOnly = config.options.has('syn-only');
      const c = new FlowCounter(registry, 'flows_to_world_total', 'Total number of flows to reserved:world', ['protocol', 'verdict', ...(withPort ? ['port'] : []), ...ctxNames]);
      return (flow) => {
        if (flow.l4 === undefined || !flow.destination.labels.includes(WORLD_LABEL)) return;
        if (flow.verdict === 'DROPPED' && !anyDrop && flow.drop_reason_desc !== 'POLICY_DENIED') return;
        const reply = flow.is_reply?.value === true;
        if (flow.verdict !== 'DROPPED' && reply) return;
        if (synOnly && (flow.l4.TCP?.flags.SYN !== true || reply)) return;
        const port = flow.l4.TCP?.destination_port ?? flow.l4.UDP?.destination_port ?? flow.l4.SCTP?.destination_port;
        c.inc([flowProtocol(flow), flow.verdict, ...(withPort ? [port === undefined ? '' : String(port)] : []), ...values(flow)]);
      };
    }
  }
}

export class HubbleMetrics {
  readonly registry = new Registry();
  /** L7 metrics enabled but never counted: cilium-ts has no L7 flows. */
  readonly skipped: string[] = [];
  private readonly handlers: Handler[] = [];
  private readonly lostEvents: Counter;
  private readonly historyLost: Counter;
  private readonly historyWritten: Counter;

  /** `option` is hubble-metrics; L7 metrics are accepted and stay empty (`skipped`). */
  constructor(option: string) {
    for (const config of parseMetricsOption(option)) {
      if ((FLOW_METRICS as readonly string[]).includes(config.name)) this.handlers.push(makeHandler(this.registry, config.name as FlowMetricName, config));
      else this.skipped.push(config.name);
    }
    this.lostEvents = counter(this.registry, 'lost_events_total', 'Number of lost events', ['source']);
    this.historyLost = counter(this.registry, 'history_lost_flows_total', 'Flows the on-disk history could not keep (the disk fell behind)', []);
    this.historyWritten = counter(this.registry, 'history_flows_written_total', 'Flows written to the on-disk history', []);
  }

  processFlow(flow: Flow): void {
    for (const h of this.handlers) h(flow);
  }

  lost(source: LostEventSource, count: number): void {
    this.lostEvents.inc({ source }, count);
  }

  historyFlowsLost(count: number): void {
    this.historyLost.inc(count);
  }

  historyFlowsWritten(count: number): void {
    this.historyWritten.inc(count);
  }
}
