// Records of the cilium_events ring buffer (layout in bpf/README.md) decoded to DatapathEvent.
import type { DatapathEvent, Direction, PacketSummary } from '../types.js';
import { ipv4String } from './ipv4.js';
import type { StructLayout } from './layout.js';

export const NOTIFY_COMMON_LAYOUT: StructLayout = {
  struct: 'notify_common',
  size: 16,
  members: { type: 0, subtype: 1, source: 2, len_orig: 4, len_cap: 8, version: 10, dir: 11, ifindex: 12 },
};

export const NOTIFY_HEAD_LAYOUT: StructLayout = {
  struct: 'notify_head',
  size: 24,
  members: { hdr: 0, src_label: 16, dst_label: 20 },
};

export const DROP_NOTIFY_LAYOUT: StructLayout = {
  struct: 'drop_notify',
  size: 96,
  members: { head: 0, line: 24, file: 26, data: 32 },
};

export const TRACE_NOTIFY_LAYOUT: StructLayout = {
  struct: 'trace_notify',
  size: 96,
  members: { head: 0, reason: 24, data: 32 },
};

export const POLICY_VERDICT_NOTIFY_LAYOUT: StructLayout = {
  struct: 'policy_verdict_notify',
  size: 96,
  members: { head: 0, verdict: 24, match_type: 28, data: 32 },
};

// Upstream monitor message types.
const TYPE_DROP = 1;
const TYPE_TRACE = 4;
const TYPE_POLICY_VERDICT = 5;
const RECORD_VERSION = 1;
const RECORD_SIZE = 96;
const DATA_OFFSET = 32;

const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;

export class EventDecodeError extends Error {
  constructor(reason: string) {
    super(`cannot decode datapath event record: ${reason}`);
    this.name = 'EventDecodeError';
  }
}

function direction(dir: number): Direction {
  if (dir === 1) return 'ingress';
  if (dir === 2) return 'egress';
  throw new EventDecodeError(`direction byte ${dir} is neither 1 (ingress) nor 2 (egress)`);
}

/** The IPv4 and L4 headers captured from the packet, summarised; zeros for what was not captured. */
export function decodePacketSummary(data: Buffer): PacketSummary {
  const summary: PacketSummary = { srcIp: '0.0.0.0', dstIp: '0.0.0.0', protocol: 0, srcPort: 0, dstPort: 0, flags: 0 };
  if (data.length < 20 || data[0]! >> 4 !== 4) return summary;
  summary.srcIp = ipv4String(data, 12);
  summary.dstIp = ipv4String(data, 16);
  summary.protocol = data[9]!;
  const l4 = (data[0]! & 0x0f) * 4;
  const fragment = (data.readUInt16BE(6) & 0x1fff) !== 0;
  if (fragment) return summary;
  if (summary.protocol === IPPROTO_ICMP) {
    if (data.length >= l4 + 2) summary.flags = (data[l4]! << 8) | data[l4 + 1]!;
    return summary;
  }
  if (data.length >= l4 + 4) {
    summary.srcPort = data.readUInt16BE(l4);
    summary.dstPort = data.readUInt16BE(l4 + 2);
  }
  if (summary.protocol === IPPROTO_TCP && data.length >= l4 + 14) summary.flags = data[l4 + 13]!;
  return summary;
}

export function decodeEvent(record: Buffer): DatapathEvent {
  if (record.length < RECORD_SIZE) throw new EventDecodeError(`${record.length} bytes, records are ${RECORD_SIZE}`);
  const version = record.readUInt8(10);
  if (version !== RECORD_VERSION) throw new EventDecodeError(`version ${version}, expected ${RECORD_VERSION}`);
  const type = record.readUInt8(0);
  const lenCap = Math.min(record.readUInt16LE(8), RECORD_SIZE - DATA_OFFSET);
  const base = {
    endpointId: record.readUInt16LE(2),
    srcIdentity: record.readUInt32LE(16),
    dstIdentity: record.readUInt32LE(20),
    packet: decodePacketSummary(record.subarray(DATA_OFFSET, DATA_OFFSET + lenCap)),
  };
  switch (type) {
    case TYPE_DROP:
      return { type: 'drop', ...base, reason: record.readUInt8(1), direction: direction(record.readUInt8(11)) };
    case TYPE_TRACE:
      return { type: 'trace', ...base, observationPoint: record.readUInt8(1), ctState: record.readUInt8(24) };
    case TYPE_POLICY_VERDICT:
      return {
        type: 'policy-verdict',
        ...base,
        direction: direction(record.readUInt8(11)),
        verdict: record.readUInt32LE(24),
        matchType: record.readUInt8(28),
      };
    default:
      throw new EventDecodeError(`unknown message type ${type}`);
  }
}
