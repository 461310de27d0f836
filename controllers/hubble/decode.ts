// A datapath event (drop, trace, policy verdict) as Hubble's flow.Flow, with upstream's field
// semantics (pkg/hubble/parser/threefour): verdict, drop reason, observation point, trace reason,
// is_reply, traffic direction, L4 with TCP flags or ICMP type/code, the summary line the CLI
// prints. Who the endpoints are and which policy a rule cookie names come from the caller.
import type { DatapathEvent, PacketSummary, TraceEvent } from '../../datapath/types.js';
import { IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../datapath/maps/protocols.js';
import { type Endpoint, type Flow, type Layer4, type NetworkInterface, type Policy, type TCPFlags, timestampOf, type TraceReason, type TrafficDirection } from './flow-types.js';
import { enumNames } from './protos.js';

/** Upstream monitor message types (pkg/monitor/api), flow.event_type.type. */
export const MESSAGE_TYPE = { drop: 1, trace: 4, 'policy-verdict': 5 } as const;

const OBS_TO_ENDPOINT = 0;
const CT_REPLY = 3;
const TRACE_REASONS: Record<number, TraceReason> = { 1: 'NEW', 2: 'ESTABLISHED', 3: 'REPLY', 4: 'RELATED' };

// Bit order of the TCP flags byte (offset 13 of the header); NS lives in the byte before.
const TCP_FLAG_BITS: [keyof TCPFlags, number][] = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
  ['ECE', 0x40],
  ['CWR', 0x80],
];
// The order upstream's summary names them in.
const SUMMARY_FLAG_ORDER: (keyof TCPFlags)[] = ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'];

// ICMPv4 type (and code) names as gopacket prints them in upstream's summary.
const ICMP_TYPES: Record<number, string> = {
  0: 'EchoReply',
  3: 'DestinationUnreachable',
  4: 'SourceQuench',
  5: 'Redirect',
  8: 'EchoRequest',
  9: 'RouterAdvertisement',
  10: 'RouterSolicitation',
  11: 'TimeExceeded',
  12: 'ParameterProblem',
  13: 'TimestampRequest',
  14: 'TimestampReply',
};
const ICMP_CODES: Record<number, Record<number, string>> = {
  3: { 0: 'Net', 1: 'Host', 2: 'Protocol', 3: 'Port', 4: 'FragmentationNeeded', 5: 'SourceRoutingFailed', 6: 'NetUnknown', 7: 'HostUnknown', 9: 'NetAdminProhibited', 10: 'HostAdminProhibited', 13: 'CommAdminProhibited' },
  5: { 0: 'Network', 1: 'Host', 2: 'TOS+Network', 3: 'TOS+Host' },
  11: { 0: 'TTLExceeded', 1: 'FragmentReassemblyTimeExceeded' },
  12: { 0: 'PointerIndicatesError', 1: 'MissingOption', 2: 'BadLength' },
};

export interface FlowContext {
  nodeName: string;
  /** The endpoint at `ip`, as the datapath identified it (`identity`, 0 when it did not). */
  endpoint(ip: string, identity: number): Endpoint;
  /** The policy whose rule wrote this cookie into the map entry that decided. */
  policy(cookie: number): Policy | undefined;
  /** The interface a local endpoint's programs run on. */
  interfaceOf(endpointId: number): NetworkInterface | undefined;
}

export function tcpFlags(byte: number): TCPFlags {
  const flags: TCPFlags = {};
  for (const [name, bit] of TCP_FLAG_BITS) if ((byte & bit) !== 0) flags[name] = true;
  return flags;
}

export function icmpSummary(type: number, code: number): string {
  const name = ICMP_TYPES[type];
  if (name === undefined) return `${type}(${code})`;
  const codes = ICMP_CODES[type];
  if (codes === undefined) return name;
  return `${name}(${codes[code] ?? `Code: ${code}`})`;
}

// The flags and summary of each TCP flags byte, made once: flows of one byte share its (frozen) flags.
const tcpFlagsOfByte = new Array<{ flags: TCPFlags; summary: string } | undefined>(256);

function tcpFlagsOf(byte: number): { flags: TCPFlags; summary: string } {
  let known = tcpFlagsOfByte[byte];
  if (known === undefined) {
    const flags = Object.freeze(tcpFlags(byte));
    known = tcpFlagsOfByte[byte] = { flags, summary: `TCP Flags: ${SUMMARY_FLAG_ORDER.filter((f) => flags[f]).join(', ')}` };
  }
  return known;
}

function layer4(p: PacketSummary): { l4?: Layer4; summary: string } {
  switch (p.protocol) {
    case IPPROTO_TCP: {
      const { flags, summary } = tcpFlagsOf(p.flags);
      return { l4: { TCP: { source_port: p.srcPort, destination_port: p.dstPort, flags } }, summary };
    }
    case IPPROTO_UDP:
      return { l4: { UDP: { source_port: p.srcPort, destination_port: p.dstPort } }, summary: 'UDP' };
    case IPPROTO_SCTP:
      return { l4: { SCTP: { source_port: p.srcPort, destination_port: p.dstPort } }, summary: 'SCTP' };
    case IPPROTO_ICMP: {
      const type = p.flags >> 8;
      const code = p.flags & 0xff;
      return { l4: { ICMPv4: { type, code } }, summary: `ICMPv4 ${icmpSummary(type, code)}` };
    }
    default:
      return { summary: 'IPv4' };
  }
}

let dropReasonNames: ReadonlyMap<number, string> | undefined;
let observationPointNames: ReadonlyMap<number, string> | undefined;

/** flow.DropReason's name for a drop code; the number itself when the enum has none. */
export function dropReasonDesc(reason: number): string | number {
  dropReasonNames ??= enumNames('flow.DropReason');
  return dropReasonNames.get(reason) ?? reason;
}

/** flow.TraceObservationPoint's name; 0 is to-endpoint, as upstream's parser reads it. */
export function observationPoint(point: number): string {
  observationPointNames ??= enumNames('flow.TraceObservationPoint');
  if (point === OBS_TO_ENDPOINT) return 'TO_ENDPOINT';
  return observationPointNames.get(point) ?? 'UNKNOWN_POINT';
}

// Upstream: a trace is egress when its endpoint sent the packet, unless it is a reply (then the
// connection was opened towards the endpoint's peer the other way round).
function traceDirection(ev: TraceEvent, source: Endpoint): TrafficDirection {
  if (ev.endpointId === 0 || TRACE_REASONS[ev.ctState] === undefined) return 'TRAFFIC_DIRECTION_UNKNOWN';
  const fromEndpoint = source.ID === ev.endpointId;
  return fromEndpoint !== (ev.ctState === CT_REPLY) ? 'EGRESS' : 'INGRESS';
}

const DIRECTION: Record<'ingress' | 'egress', TrafficDirection> = { ingress: 'INGRESS', egress: 'EGRESS' };

/** The flow of one datapath event observed at `timeMs` (ms since the epoch, fractions kept). */
export function eventToFlow(ev: DatapathEvent, meta: { timeMs: number; uuid: string }, ctx: FlowContext): Flow {
  const p = ev.packet;
  const source = ctx.endpoint(p.srcIp, ev.srcIdentity);
  const destination = ctx.endpoint(p.dstIp, ev.dstIdentity);
  const { l4, summary } = layer4(p);
  const flow: Flow = {
    time: timestampOf(meta.timeMs),
    uuid: meta.uuid,
    verdict: 'FORWARDED',
    IP: { source: p.srcIp, destination: p.dstIp, ipVersion: 'IPv4' },
    source,
    destination,
    Type: 'L3_L4',
    node_name: ctx.nodeName,
    event_type: { type: MESSAGE_TYPE[ev.type], sub_type: 0 },
    traffic_direction: 'TRAFFIC_DIRECTION_UNKNOWN',
    Summary: summary,
  };
  if (l4) flow.l4 = l4;
  switch (ev.type) {
    case 'drop':
      flow.verdict = 'DROPPED';
      flow.drop_reason = ev.reason;
      flow.drop_reason_desc = dropReasonDesc(ev.reason);
      flow.event_type.sub_type = ev.reason;
      flow.traffic_direction = DIRECTION[ev.direction];
      decidedBy(flow, ctx, ev.cookie, ev.direction, false);
      break;
    case 'trace': {
      flow.trace_observation_point = observationPoint(ev.observationPoint);
      flow.event_type.sub_type = ev.observationPoint;
      flow.trace_reason = TRACE_REASONS[ev.ctState] ?? 'TRACE_REASON_UNKNOWN';
      if (TRACE_REASONS[ev.ctState] !== undefined) setReply(flow, ev.ctState === CT_REPLY);
      flow.traffic_direction = traceDirection(ev, source);
      const iface = ctx.interfaceOf(ev.endpointId);
      if (iface) flow.interface = iface;
      break;
    }
    case 'policy-verdict':
      flow.policy_match_type = ev.matchType;
      flow.traffic_direction = DIRECTION[ev.direction];
      if (ev.verdict === 0) setReply(flow, false);
      else {
        flow.verdict = 'DROPPED';
        flow.drop_reason = ev.verdict;
        flow.drop_reason_desc = dropReasonDesc(ev.verdict);
      }
      decidedBy(flow, ctx, ev.cookie, ev.direction, ev.verdict === 0);
      break;
  }
  return flow;
}

// The policy whose rule cookie the datapath reported, in the field of its direction and verdict.
function decidedBy(flow: Flow, ctx: FlowContext, cookie: number, direction: 'ingress' | 'egress', allowed: boolean): void {
  const policy = cookie !== 0 ? ctx.policy(cookie) : undefined;
  if (policy === undefined) return;
  if (direction === 'ingress') {
    if (allowed) flow.ingress_allowed_by = [policy];
    else flow.ingress_denied_by = [policy];
  } else if (allowed) flow.egress_allowed_by = [policy];
  else flow.egress_denied_by = [policy];
}

function setReply(flow: Flow, reply: boolean): void {
  flow.is_reply = { value: reply };
  flow.reply = reply;
}
