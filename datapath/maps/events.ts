// Records of the cilium_events ring buffer (layout in bpf/README.md) decoded to DatapathEvent.
import type { DatapathEvent, PacketSummary, PolicyDirection } from '../types.js';
import { ipv4String } from './ipv4.js';
import { IPPROTO_ICMP, IPPROTO_TCP } from './protocols.js';
import { at, type StructLayout } from './layout.js';

export const NOTIFY_COMMON_LAYOUT = {
  struct: 'notify_common',
  size: 16,
  members: { type: at(0, 1), subtype: at(1, 1), source: at(2, 2), len_orig: at(4, 4), len_cap: at(8, 2), version: at(10, 1), dir: at(11, 1), ifindex: at(12, 4) },
} as const satisfies StructLayout;

export const NOTIFY_HEAD_LAYOUT = {
  struct: 'notify_head',
  size: 24,
  members: { hdr: at(0, 16), src_label: at(16, 4), dst_label: at(20, 4) },
} as const satisfies StructLayout;

export const DROP_NOTIFY_LAYOUT = {
  struct: 'drop_notify',
  size: 96,
  members: { head: at(0, 24), line: at(24, 2), file: at(26, 1), cookie: at(28, 4), data: at(32, 64) },
} as const satisfies StructLayout;

export const TRACE_NOTIFY_LAYOUT = {
  struct: 'trace_notify',
  size: 96,
  members: { head: at(0, 24), reason: at(24, 1), data: at(32, 64) },
} as const satisfies StructLayout;

export const POLICY_VERDICT_NOTIFY_LAYOUT = {
  struct: 'policy_verdict_notify',
  size: 96,
  members: { head: at(0, 24), verdict: at(24, 2), match_type: at(26, 1), cookie: at(28, 4), data: at(32, 64) },
} as const satisfies StructLayout;

// Upstream monitor message types.
const TYPE_DROP = 1;
const TYPE_TRACE = 4;
const TYPE_POLICY_VERDICT = 5;
const RECORD_VERSION = 1;
// Every record type has the same size and capture offset (static asserts in bpf/lib/notify.h).
const RECORD_SIZE = DROP_NOTIFY_LAYOUT.size;
const DATA_OFFSET = DROP_NOTIFY_LAYOUT.members.data.offset;
// The common header starts every record (notify_head.hdr at 0, each record's head at 0).
const C = NOTIFY_COMMON_LAYOUT.members;
const H = NOTIFY_HEAD_LAYOUT.members;

export class EventDecodeError extends Error {
  constructor(reason: string) {
    super(`cannot decode datapath event record: ${reason}`);
    this.name = 'EventDecodeError';
  }
}

function direction(dir: number): PolicyDirection {
  if (dir === 1) return 'ingress';
  if (dir === 2) return 'egress';
  throw new EventDecodeError(`direction byte ${dir} is neither 1 (ingress) nor 2 (egress)`);
}

// Addresses repeat from record to record: one string per address spares formatting it here and
// hashing it again in every map the event's flow passes through (keys: the address as an int32).
const ADDRESS_CACHE_MAX = 65_536;
const addresses = new Map<number, string>();

function address(data: Buffer, offset: number): string {
  const key = data.readInt32BE(offset);
  let text = addresses.get(key);
  if (text === undefined) {
    if (addresses.size >= ADDRESS_CACHE_MAX) addresses.clear();
    text = ipv4String(data, offset);
    addresses.set(key, text);
  }
  return text;
}

/** The IPv4 and L4 headers captured from the packet at `data[start, end)`, summarised; zeros for what was not captured. */
function decodePacketSummary(data: Buffer, start: number, end: number): PacketSummary {
  const summary: PacketSummary = { srcIp: '0.0.0.0', dstIp: '0.0.0.0', protocol: 0, srcPort: 0, dstPort: 0, flags: 0 };
  if (end - start < 20 || data[start]! >> 4 !== 4) return summary;
  summary.srcIp = address(data, start + 12);
  summary.dstIp = address(data, start + 16);
  const protocol = data[start + 9]!;
  summary.protocol = protocol;
  const l4 = start + (data[start]! & 0x0f) * 4;
  const fragment = ((data[start + 6]! << 8) | data[start + 7]!) & 0x1fff;
  if (fragment !== 0) return summary;
  if (protocol === IPPROTO_ICMP) {
    if (end >= l4 + 2) summary.flags = (data[l4]! << 8) | data[l4 + 1]!;
    return summary;
  }
  if (end >= l4 + 4) {
    summary.srcPort = (data[l4]! << 8) | data[l4 + 1]!;
    summary.dstPort = (data[l4 + 2]! << 8) | data[l4 + 3]!;
  }
  if (protocol === IPPROTO_TCP && end >= l4 + 14) summary.flags = data[l4 + 13]!;
  return summary;
}

export function decodeEvent(record: Buffer): DatapathEvent {
  if (record.length < RECORD_SIZE) throw new EventDecodeError(`${record.length} bytes, records are ${RECORD_SIZE}`);
  const version = record[C.version.offset]!;
  if (version !== RECORD_VERSION) throw new EventDecodeError(`version ${version}, expected ${RECORD_VERSION}`);
  const type = record[C.type.offset]!;
  const lenCap = Math.min(record.readUInt16LE(C.len_cap.offset), RECORD_SIZE - DATA_OFFSET);
  const endpointId = record.readUInt16LE(C.source.offset);
  const srcIdentity = record.readUInt32LE(H.src_label.offset);
  const dstIdentity = record.readUInt32LE(H.dst_label.offset);
  const packet = decodePacketSummary(record, DATA_OFFSET, DATA_OFFSET + lenCap);
  // Each kind one object literal (no spread of shared fields): decoding runs for every event.
  switch (type) {
    case TYPE_DROP:
      return {
        type: 'drop',
        endpointId,
        srcIdentity,
        dstIdentity,
        packet,
        reason: record[C.subtype.offset]!,
        direction: direction(record[C.dir.offset]!),
        cookie: record.readUInt32LE(DROP_NOTIFY_LAYOUT.members.cookie.offset),
        file: record[DROP_NOTIFY_LAYOUT.members.file.offset]!,
        line: record.readUInt16LE(DROP_NOTIFY_LAYOUT.members.line.offset),
      };
    case TYPE_TRACE:
      return { type: 'trace', endpointId, srcIdentity, dstIdentity, packet, observationPoint: record[C.subtype.offset]!, ctState: record[TRACE_NOTIFY_LAYOUT.members.reason.offset]! };
    case TYPE_POLICY_VERDICT:
      return {
        type: 'policy-verdict',
        endpointId,
        srcIdentity,
        dstIdentity,
        packet,
        direction: direction(record[C.dir.offset]!),
        verdict: record.readUInt16LE(POLICY_VERDICT_NOTIFY_LAYOUT.members.verdict.offset),
        matchType: record[POLICY_VERDICT_NOTIFY_LAYOUT.members.match_type.offset]!,
        cookie: record.readUInt32LE(POLICY_VERDICT_NOTIFY_LAYOUT.members.cookie.offset),
      };
    default:
      throw new EventDecodeError(`unknown message type ${type}`);
  }
}
