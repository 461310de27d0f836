// `cilium monitor` lines (pkg/monitor DumpInfo / DumpJSON of drop, trace and policy-verdict
// notifications, GetConnectionSummary for the packet). Events arrive from the agent's
// /v1/monitor stream as decoded DatapathEvents; what upstream prints from record fields our
// events do not carry (flow hash, ifindex) prints as upstream prints a zero.
import type { DatapathEvent, PacketSummary } from '../../../datapath/types.js';
import { IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../../datapath/maps/protocols.js';
import { bpfFileName, ctStateName, observationPointName, policyMatchName, reasonName } from '../text/datapath-names.js';
import { goHex, goJson } from '../text/go-format.js';
import { identityName } from '../text/labels.js';

/** One line of the agent's monitor stream. */
export type MonitorEvent = DatapathEvent & {
  time?: string;
  cpu?: number;
  /** Record fields a later stream may add; absent means 0 as in a record that leaves them unset. */
  hash?: number;
  ifindex?: number;
};

/** Upstream's monitor event type names (-t), of which our datapath emits these three. */
export const MONITOR_TYPES = ['drop', 'debug', 'capture', 'trace', 'l7', 'agent', 'policy-verdict', 'recorder', 'trace-sock'] as const;

export interface MonitorFilter {
  types?: readonly string[];
  relatedTo?: readonly number[];
}

export function matchesFilter(ev: MonitorEvent, f: MonitorFilter): boolean {
  if (f.types !== undefined && f.types.length > 0 && !f.types.includes(ev.type)) return false;
  if (f.relatedTo !== undefined && f.relatedTo.length > 0 && !f.relatedTo.includes(ev.endpointId) && !f.relatedTo.includes(destinationEndpoint(ev))) return false;
  return true;
}

// The endpoint a packet is delivered to, upstream's dst_id: set by the ingress hook, 0 on egress.
function destinationEndpoint(ev: MonitorEvent): number {
  if (ev.type === 'trace') return ev.observationPoint === TRACE_TO_ENDPOINT ? ev.endpointId : 0;
  return ev.direction === 'ingress' ? ev.endpointId : 0;
}

const TRACE_TO_ENDPOINT = 0;
const TRACE_FROM_ENDPOINT = 5;

function identity(id: number, numeric: boolean): string {
  return numeric ? String(id) : identityName(id);
}

// gopacket's ICMPv4TypeCode String.
const ICMP_TYPES: Record<number, { name: string; codes?: Record<number, string> }> = {
  0: { name: 'EchoReply' },
  3: {
    name: 'DestinationUnreachable',
    codes: {
      0: 'Net',
      1: 'Host',
      2: 'Protocol',
      3: 'Port',
      4: 'FragmentationNeeded',
      5: 'SourceRoutingFailed',
      6: 'NetUnknown',
      7: 'HostUnknown',
      8: 'SourceIsolated',
      9: 'NetAdminProhibited',
      10: 'HostAdminProhibited',
      11: 'NetTOS',
      12: 'HostTOS',
      13: 'CommAdminProhibited',
      14: 'HostPrecedence',
      15: 'PrecedenceCutoff',
    },
  },
  4: { name: 'SourceQuench' },
  5: { name: 'Redirect', codes: { 0: 'Net', 1: 'Host', 2: 'TOS+Net', 3: 'TOS+Host' } },
  8: { name: 'EchoRequest' },
  9: { name: 'RouterAdvertisement' },
  10: { name: 'RouterSolicitation' },
  11: { name: 'TimeExceeded', codes: { 0: 'TTLExceeded', 1: 'FragmentReassemblyTimeExceeded' } },
  12: { name: 'ParameterProblem', codes: { 0: 'PointerIndicatesError', 1: 'MissingOption', 2: 'BadLength' } },
  13: { name: 'TimestampRequest' },
  14: { name: 'TimestampReply' },
  15: { name: 'InfoRequest' },
  16: { name: 'InfoReply' },
  17: { name: 'AddressMaskRequest' },
  18: { name: 'AddressMaskReply' },
};

function icmpTypeCode(typeCode: number): string {
  const type = typeCode >> 8;
  const code = typeCode & 0xff;
  const info = ICMP_TYPES[type];
  if (info === undefined) return `${type}(${code})`;
  if (info.codes === undefined) return code === 0 ? info.name : `${info.name}(Code: ${code})`;
  const codeName = info.codes[code];
  return codeName === undefined ? `${info.name}(Code: ${code})` : `${info.name}(${codeName})`;
}

const TCP_FLAGS: Array<[number, string]> = [
  [0x02, 'SYN'],
  [0x10, 'ACK'],
  [0x04, 'RST'],
  [0x01, 'FIN'],
];

const L4_NAMES: Record<number, string> = { [IPPROTO_TCP]: 'tcp', [IPPROTO_UDP]: 'udp', [IPPROTO_SCTP]: 'sctp' };

/** Upstream's one-line packet summary ("10.0.0.1:41022 -> 10.0.0.2:8080 tcp SYN"). */
export function connectionSummary(p: PacketSummary): string {
  if (p.srcIp === '0.0.0.0' && p.dstIp === '0.0.0.0' && p.protocol === 0) return '[unknown]';
  if (p.protocol === IPPROTO_ICMP) return `${p.srcIp} -> ${p.dstIp} icmp ${icmpTypeCode(p.flags)}`;
  const l4 = L4_NAMES[p.protocol];
  if (l4 === undefined) return `${p.srcIp} -> ${p.dstIp}`;
  let text = `${p.srcIp}:${p.srcPort} -> ${p.dstIp}:${p.dstPort} ${l4}`;
  if (p.protocol === IPPROTO_TCP) {
    text += ` ${TCP_FLAGS.filter(([bit]) => p.flags & bit)
      .map(([, name]) => name)
      .join(', ')}`;
  }
  return text;
}

function traceSummary(ev: Extract<MonitorEvent, { type: 'trace' }>): string {
  switch (ev.observationPoint) {
    case TRACE_TO_ENDPOINT:
      return `-> endpoint ${destinationEndpoint(ev)}`;
    case TRACE_FROM_ENDPOINT:
      return `<- endpoint ${ev.endpointId}`;
    case 1:
      return '-> proxy';
    case 2:
      return '-> host from';
    case 3:
      return '-> stack';
    case 4:
      return '-> overlay';
    case 6:
      return '<- proxy';
    case 7:
      return '<- host';
    case 8:
      return '<- stack';
    case 9:
      return '<- overlay';
    case 10:
      return '<- network';
    case 11:
      return '-> network';
    case 12:
      return '<- crypto';
    case 13:
      return '-> crypto';
    default:
      return 'unknown trace';
  }
}

/** The line upstream's monitor prints for an event at its default verbosity (and -v). */
export function formatMonitorLine(ev: MonitorEvent, opts: { numeric?: boolean } = {}): string {
  const numeric = opts.numeric ?? false;
  const ids = `identity ${identity(ev.srcIdentity, numeric)}->${identity(ev.dstIdentity, numeric)}`;
  const flow = goHex(ev.hash ?? 0);
  switch (ev.type) {
    case 'drop':
      return `xx drop (${reasonName(ev.reason)}) flow ${flow} to endpoint ${destinationEndpoint(ev)}, ifindex ${ev.ifindex ?? 0}, file ${bpfFileName(ev.file ?? 0)}:${ev.line ?? 0}, , ${ids}: ${connectionSummary(ev.packet)}\n`;
    case 'trace':
      return `${traceSummary(ev)} flow ${flow} , ${ids} state ${ctStateName(ev.ctState)} ifindex ${ev.ifindex ?? 0} orig-ip 0.0.0.0: ${connectionSummary(ev.packet)}\n`;
    case 'policy-verdict': {
      const remote = ev.direction === 'ingress' ? ev.srcIdentity : ev.dstIdentity;
      const action = ev.verdict === 0 ? 'allow' : 'deny';
      return `Policy verdict log: flow ${flow} local EP ID ${ev.endpointId}, remote ID ${identity(remote, numeric)}, proto ${ev.packet.protocol}, ${ev.direction}, action ${action}, auth: disabled, match ${policyMatchName(ev.matchType)}, ${connectionSummary(ev.packet)}\n`;
    }
  }
}

function flowSummary(p: PacketSummary): object | undefined {
  if (p.srcIp === '0.0.0.0' && p.dstIp === '0.0.0.0') return undefined;
  const l3 = { src: p.srcIp, dst: p.dstIp };
  return L4_NAMES[p.protocol] === undefined ? { l3 } : { l3, l4: { src: String(p.srcPort), dst: String(p.dstPort) } };
}

/**
 * `-j` / `-o json`: drops and traces as upstream's JSON objects (one per line, with the CPU
 * prefix); policy verdicts have no JSON form upstream and print their text line.
 */
export function formatMonitorJson(ev: MonitorEvent, opts: { numeric?: boolean } = {}): string {
  const cpu = `CPU ${String(ev.cpu ?? 0).padStart(2, '0')}:`;
  switch (ev.type) {
    case 'drop':
      return `${goJson({
        cpu,
        type: 'drop',
        mark: goHex(ev.hash ?? 0),
        reason: reasonName(ev.reason),
        source: ev.endpointId,
        bytes: 0,
        srcLabel: ev.srcIdentity,
        dstLabel: ev.dstIdentity,
        dstID: destinationEndpoint(ev),
        Line: ev.line ?? 0,
        File: ev.file ?? 0,
        ExtError: 0,
        Ifindex: ev.ifindex ?? 0,
        summary: flowSummary(ev.packet),
      })}\n`;
    case 'trace':
      return `${goJson({
        cpu,
        type: 'trace',
        mark: goHex(ev.hash ?? 0),
        ifindex: String(ev.ifindex ?? 0),
        state: ctStateName(ev.ctState),
        observationPoint: observationPointName(ev.observationPoint),
        traceSummary: traceSummary(ev),
        source: ev.endpointId,
        bytes: 0,
        srcLabel: ev.srcIdentity,
        dstLabel: ev.dstIdentity,
        dstID: destinationEndpoint(ev),
        IpTraceID: 0,
        summary: flowSummary(ev.packet),
      })}\n`;
    case 'policy-verdict':
      return formatMonitorLine(ev, opts);
  }
}
