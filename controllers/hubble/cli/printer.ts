// How `hubble observe` and `hubble status` print (upstream hubble/pkg/printer): compact lines,
// dict blocks, a tab-aligned table, or protojson lines; node status and lost events as upstream
// words them. Colors are fatih/color's, and terminal control characters in the data are escaped.
import { identityName } from '../../cli/text/labels.js';
import { observationPointName, policyMatchName, reasonName } from '../../cli/text/datapath-names.js';
import { tabwrite } from '../../cli/text/tabwriter.js';
import { goJson } from '../../cli/text/go-format.js';
import type { Timestamp } from '../flow-types.js';
import { MESSAGE_TYPES } from './filters.js';
import { toProtoJson } from './protojson.js';
import { formatTime, type TimeFormat } from './time.js';

export type OutputFormat = 'compact' | 'dict' | 'jsonpb' | 'table';

/** A flow as the CLI reads it: the protos.ts convention, every field present (proto-loader defaults). */
export interface PrintedFlow {
  time: Timestamp | null;
  verdict: string;
  auth_type?: string;
  IP: { source: string; destination: string } | null;
  ethernet?: { source: string; destination: string } | null;
  l4: { TCP?: Ports | null; UDP?: Ports | null; SCTP?: Ports | null } | null;
  source: { identity: number; namespace: string; pod_name: string } | null;
  destination: { identity: number; namespace: string; pod_name: string } | null;
  source_service?: { name: string; namespace: string } | null;
  destination_service?: { name: string; namespace: string } | null;
  source_names?: string[];
  destination_names?: string[];
  node_name: string;
  l7?: { type: string; http?: object | null; dns?: { observation_source: string } | null } | null;
  event_type: { type: number; sub_type: number } | null;
  is_reply: { value: boolean } | null;
  Summary: string;
  ip_trace_id?: { trace_id: string } | null;
  traffic_direction: string;
  policy_match_type: number;
  debug_capture_point?: string;
  ingress_allowed_by?: PolicyRef[];
  egress_allowed_by?: PolicyRef[];
  ingress_denied_by?: PolicyRef[];
  egress_denied_by?: PolicyRef[];
}
interface Ports {
  source_port: number;
  destination_port: number;
}
interface PolicyRef {
  name: string;
  kind: string;
}

export interface PrintedResponse {
  flow?: PrintedFlow | null;
  node_status?: { state_change: string; node_names: string[]; message: string } | null;
  lost_events?: { source: string; num_events_lost: string; cpu: { value: number } | null; first: Timestamp | null; last: Timestamp | null } | null;
  node_name: string;
  time: Timestamp | null;
}

export interface PrinterOptions {
  output: OutputFormat;
  timeFormat: TimeFormat;
  color: boolean;
  ipTranslation: boolean;
  nodeName: boolean;
  policyNames: boolean;
  /** Informational node status events too (upstream --debug). */
  debug: boolean;
  /** Drop what goes to stderr (upstream --silent-errors). */
  silentErrors: boolean;
  stdout(text: string): void;
  stderr(text: string): void;
}

const COLORS = { red: 31, green: 32, yellow: 33, cyan: 36, magenta: 35 } as const;
// eslint-disable-next-line no-control-regex -- the escape sequences of fatih/color are what it matches
const COLOR_SEQUENCE = /\x1b\[(?:3[1-6]|0)m/y;
const NODE_NAMES_CUT_OFF = 50;
const DICT_SEPARATOR = '------------';

/** Upstream joinWithCutOff: names while they fit in `target` characters, then " (and N more)". */
export function joinWithCutOff(elems: readonly string[], sep: string, target: number): string {
  let len = 0;
  let end = elems.length;
  for (let i = 0; i < elems.length; i++) {
    len += elems[i]!.length + sep.length;
    if (len > target && i > 0) {
      end = i;
      break;
    }
  }
  const joined = elems.slice(0, end).join(sep);
  return end === elems.length ? joined : `${joined} (and ${elems.length - end} more)`;
}

/** Go's net.JoinHostPort. */
function joinHostPort(host: string, port: string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

// Go's path.Join of namespace and name: no slash when the namespace is empty.
const joinName = (ns: string, name: string) => (ns === '' ? name : `${ns}/${name}`);

export function flowType(f: PrintedFlow): string {
  if (f.l7) {
    const type = f.l7.type.toLowerCase();
    if (f.l7.http) return `http-${type}`;
    if (f.l7.dns) return `dns-${type} ${f.l7.dns.observation_source}`;
    return `l7-${type}`;
  }
  const sub = f.event_type?.sub_type ?? 0;
  switch (f.event_type?.type ?? 0) {
    case MESSAGE_TYPES.trace:
      return observationPointName(sub & 0xff);
    case MESSAGE_TYPES.drop:
      return reasonName(sub & 0xff);
    case MESSAGE_TYPES['policy-verdict']:
      return `policy-verdict:${policyMatchName(f.policy_match_type)} ${f.traffic_direction}`;
    case MESSAGE_TYPES.capture:
      return f.debug_capture_point ?? 'DBG_CAPTURE_POINT_UNKNOWN';
    case MESSAGE_TYPES['trace-sock']:
      return ({ 1: 'pre-xlate-fwd', 2: 'post-xlate-fwd', 3: 'pre-xlate-rev', 4: 'post-xlate-rev' } as Record<number, string>)[sub] ?? 'SOCK_XLATE_POINT_UNKNOWN';
    default:
      return 'UNKNOWN';
  }
}

export class FlowPrinter {
  private line = 0;
  private table = '';

  constructor(private readonly o: PrinterOptions) {}

  private paint(color: keyof typeof COLORS, text: string): string {
    return this.o.color ? `\x1b[${COLORS[color]}m${text}\x1b[0m` : text;
  }

  // Upstream's terminal escaper: only its own color sequences pass, ESC and CR are made visible.
  private escape(text: string): string {
    let out = '';
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\x1b') {
        COLOR_SEQUENCE.lastIndex = i;
        const m = this.o.color ? COLOR_SEQUENCE.exec(text) : null;
        if (m !== null) {
          out += m[0];
          i += m[0].length - 1;
        } else out += '^[';
      } else out += c === '\r' ? '\\r' : c;
    }
    return out;
  }

  private out(text: string): void {
    this.o.stdout(this.escape(text));
  }

  private err(text: string): void {
    if (!this.o.silentErrors) this.o.stderr(this.escape(text));
  }

  private hostname(ip: string, port: string, ns: string, pod: string, svc: string, names: readonly string[]): string {
    let host = ip;
    if (this.o.ipTranslation) {
      if (pod !== '') host = joinName(ns, pod);
      else if (svc !== '') host = joinName(ns, svc);
      else if (names.length > 0) host = names.join(',');
    }
    return port !== '' && port !== '0' ? joinHostPort(host, this.paint('yellow', port)) : host;
  }

  private hostNames(f: PrintedFlow): [string, string] {
    if (!f.IP) {
      if (f.ethernet) return [this.paint('cyan', f.ethernet.source), this.paint('cyan', f.ethernet.destination)];
      return ['', ''];
    }
    const l4 = f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP;
    const [sp, dp] = l4 ? [String(l4.source_port), String(l4.destination_port)] : ['', ''];
    let srcNs = f.source?.namespace ?? '';
    let dstNs = f.destination?.namespace ?? '';
    let srcSvc = '';
    let dstSvc = '';
    if (f.source_service) [srcNs, srcSvc] = [f.source_service.namespace, f.source_service.name];
    if (f.destination_service) [dstNs, dstSvc] = [f.destination_service.namespace, f.destination_service.name];
    const src = this.hostname(f.IP.source, sp, srcNs, f.source?.pod_name ?? '', srcSvc, f.source_names ?? []);
    const dst = this.hostname(f.IP.destination, dp, dstNs, f.destination?.pod_name ?? '', dstSvc, f.destination_names ?? []);
    return [this.paint('cyan', src), this.paint('cyan', dst)];
  }

  private identity(id: number): string {
    const name = identityName(id);
    return this.paint('magenta', name !== String(id) ? `(${name})` : `(ID:${id})`);
  }

  private policyNames(list: readonly PolicyRef[] | undefined): string {
    const named = (list ?? []).filter((p) => p.kind !== '' && p.name !== '');
    return named.length === 0 ? '' : ` BY ${named.map((p) => `${p.name} (${p.kind})`).join(', ')}`;
  }

  private verdict(f: PrintedFlow): string {
    const isVerdict = f.event_type?.type === MESSAGE_TYPES['policy-verdict'];
    const dir = f.traffic_direction;
    const by = (egress: PolicyRef[] | undefined, ingress: PolicyRef[] | undefined) => (this.o.policyNames ? (dir === 'EGRESS' ? this.policyNames(egress) : dir === 'INGRESS' ? this.policyNames(ingress) : '') : '');
    switch (f.verdict) {
      case 'FORWARDED':
      case 'REDIRECTED':
        return this.paint('green', isVerdict ? `ALLOWED${by(f.egress_allowed_by, f.ingress_allowed_by)}` : f.verdict);
      case 'DROPPED':
      case 'ERROR':
        return this.paint('red', isVerdict ? `DENIED${by(f.egress_denied_by, f.ingress_denied_by)}` : f.verdict);
      case 'AUDIT':
        return this.paint('yellow', isVerdict ? `AUDITED${by(f.egress_denied_by, f.ingress_denied_by)}` : f.verdict);
      case 'TRACED':
      case 'TRANSLATED':
        return this.paint('yellow', f.verdict);
      default:
        return f.verdict;
    }
  }

  private summary(f: PrintedFlow): string {
    let s = '';
    const traceId = f.ip_trace_id?.trace_id;
    if (traceId !== undefined && traceId !== '0') s += `IP Trace ID: ${traceId}; `;
    s += f.Summary;
    const auth = f.auth_type ?? 'DISABLED';
    if (auth !== 'DISABLED') s += `; Auth: ${this.paint(auth === 'TEST_ALWAYS_FAIL' ? 'red' : 'green', auth)}`;
    return s;
  }

  private time(ts: Timestamp | null): string {
    return formatTime(ts, this.o.timeFormat);
  }

  private tableHeader(): void {
    if (this.line === 0) this.table += `TIMESTAMP\t${this.o.nodeName ? 'NODE\t' : ''}SOURCE\tDESTINATION\tTYPE\tVERDICT\tSUMMARY\n`;
  }

  /** One GetFlowsResponse. */
  write(res: PrintedResponse): void {
    if (res.flow) return this.writeFlow(res, res.flow);
    if (res.node_status) return this.writeNodeStatus(res, res.node_status);
    if (res.lost_events) return this.writeLost(res, res.lost_events);
  }

  private writeFlow(res: PrintedResponse, f: PrintedFlow): void {
    const o = this.o;
    switch (o.output) {
      case 'jsonpb':
        return this.o.stdout(`${goJson(toProtoJson('observer.GetFlowsResponse', res as unknown as Record<string, unknown>))}\n`);
      case 'table': {
        const [src, dst] = this.hostNames(f);
        this.tableHeader();
        this.table += `${this.time(f.time)}\t${o.nodeName ? `${f.node_name}\t` : ''}${src}\t${dst}\t${flowType(f)}\t${this.verdict(f)}\t${this.summary(f)}\n`;
        break;
      }
      case 'dict': {
        const [src, dst] = this.hostNames(f);
        let text = this.line !== 0 ? `${DICT_SEPARATOR}\n` : '';
        text += `  TIMESTAMP: ${this.time(f.time)}\n`;
        if (o.nodeName) text += `       NODE: ${f.node_name}\n`;
        text += `     SOURCE: ${src}\nDESTINATION: ${dst}\n       TYPE: ${flowType(f)}\n    VERDICT: ${this.verdict(f)}\n    SUMMARY: ${this.summary(f)}\n`;
        this.out(text);
        break;
      }
      case 'compact': {
        let [src, dst] = this.hostNames(f);
        let srcId = this.identity(f.source?.identity ?? 0);
        let dstId = this.identity(f.destination?.identity ?? 0);
        let arrow = '->';
        if (f.is_reply == null) arrow = '<>';
        else if (f.is_reply.value) {
          [src, dst] = [dst, src];
          [srcId, dstId] = [dstId, srcId];
          arrow = '<-';
        }
        const node = o.nodeName ? ` [${f.node_name}]` : '';
        this.out(`${this.time(f.time)}${node}: ${src} ${srcId} ${arrow} ${dst} ${dstId} ${flowType(f)} ${this.verdict(f)} (${this.summary(f)})\n`);
        break;
      }
    }
    this.line++;
  }

  private writeNodeStatus(res: PrintedResponse, s: NonNullable<PrintedResponse['node_status']>): void {
    if (!this.o.debug && s.state_change !== 'NODE_ERROR' && s.state_change !== 'NODE_UNAVAILABLE') return;
    const names = joinWithCutOff(s.node_names, ', ', NODE_NAMES_CUT_OFF);
    switch (this.o.output) {
      case 'jsonpb':
        if (!this.o.silentErrors) this.o.stderr(`${goJson(toProtoJson('observer.GetFlowsResponse', res as unknown as Record<string, unknown>))}\n`);
        return;
      case 'dict': {
        let text = '';
        if (this.line !== 0) text += `${DICT_SEPARATOR}\n`;
        else this.line++;
        const message = s.message === '' ? 'N/A' : JSON.stringify(s.message);
        text += `  TIMESTAMP: ${this.time(res.time)}\n      STATE: ${s.state_change}\n      NODES: ${names}\n    MESSAGE: ${message}\n`;
        return this.err(text);
      }
      default: {
        const n = s.node_names.length;
        const prefix = `${this.time(res.time)} [${res.node_name}]`;
        const msg = {
          NODE_CONNECTED: `${prefix}: Receiving flows from ${n} nodes: ${names}`,
          NODE_UNAVAILABLE: `${prefix}: ${n} nodes are unavailable: ${names}`,
          NODE_GONE: `${prefix}: ${n} nodes removed from cluster: ${names}`,
          NODE_ERROR: `${prefix}: Error ${JSON.stringify(s.message)} on ${n} nodes: ${names}`,
        }[s.state_change];
        return this.err(`${msg ?? `${prefix}: unknown node status event: ${JSON.stringify(s)}`}\n`);
      }
    }
  }

  private writeLost(res: PrintedResponse, l: NonNullable<PrintedResponse['lost_events']>): void {
    const o = this.o;
    const cpu = l.cpu?.value ?? 0;
    const span = l.first && l.last ? ` (first: ${this.time(l.first)}, last: ${this.time(l.last)})` : '';
    const node = res.node_name === '' ? '-' : res.node_name;
    switch (o.output) {
      case 'jsonpb':
        return this.o.stdout(`${goJson(toProtoJson('observer.GetFlowsResponse', res as unknown as Record<string, unknown>))}\n`);
      case 'table':
        this.tableHeader();
        this.table += `${this.time(res.time)}\t${o.nodeName ? `${node}\t` : ''}${l.source}\t-\tEVENTS LOST\t-\tCPU(${cpu}) - ${l.num_events_lost}${span}\n`;
        break;
      case 'dict': {
        let text = this.line !== 0 ? `${DICT_SEPARATOR}\n` : '';
        text += `  TIMESTAMP: ${this.time(res.time)}\n`;
        if (o.nodeName) text += `       NODE: ${node}\n`;
        text += `     SOURCE: ${l.source}\n       TYPE: EVENTS LOST\n    VERDICT: -\n    SUMMARY: CPU(${cpu}) - ${l.num_events_lost}${span}\n`;
        this.out(text);
        break;
      }
      case 'compact':
        this.out(`${this.time(res.time)} EVENTS LOST: ${l.source} CPU(${cpu}) ${l.num_events_lost}${span}\n`);
        break;
    }
    this.line++;
  }

  /** Ends the output: the table is laid out once all its rows are known, as Go's tabwriter flushes. */
  close(): void {
    if (this.table !== '') this.out(tabwrite(this.table, { minwidth: 2, padding: 3 }));
    this.table = '';
  }
}
