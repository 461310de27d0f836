// cilium_ct4_global / cilium_ct_any4_global: conntrack tuples and the reduced ct_entry.
import { ipv4String } from './ipv4.js';
import type { StructLayout } from './layout.js';

export const CT_TUPLE_LAYOUT: StructLayout = {
  struct: 'ipv4_ct_tuple',
  size: 14,
  members: { daddr: 0, saddr: 4, dport: 8, sport: 10, nexthdr: 12, flags: 13 },
};

export const CT_ENTRY_LAYOUT: StructLayout = {
  struct: 'ct_entry',
  size: 32,
  members: { packets: 0, bytes: 8, lifetime: 16, flags: 20, tx_flags_seen: 22, rx_flags_seen: 23, src_sec_id: 24, pad: 28 },
};

/** Which endpoint hook first saw the flow. */
export type CtHook = 'egress' | 'ingress';

export interface CtTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  protocol: number;
  hook: CtHook;
}

export interface CtEntry {
  packets: number;
  bytes: number;
  /** Expiry in seconds of the kernel's monotonic clock (bpf_ktime_get_ns). */
  lifetime: number;
  rxClosing: boolean;
  txClosing: boolean;
  seenNonSyn: boolean;
  txFlagsSeen: number;
  rxFlagsSeen: number;
  srcIdentity: number;
}

const TUPLE_F_IN = 1;

export function decodeCtTuple(buf: Buffer): CtTuple {
  return {
    daddr: ipv4String(buf, 0),
    saddr: ipv4String(buf, 4),
    dport: buf.readUInt16BE(8),
    sport: buf.readUInt16BE(10),
    protocol: buf.readUInt8(12),
    hook: buf.readUInt8(13) & TUPLE_F_IN ? 'ingress' : 'egress',
  };
}

export function decodeCtEntry(buf: Buffer): CtEntry {
  const flags = buf.readUInt16LE(20);
  return {
    packets: Number(buf.readBigUInt64LE(0)),
    bytes: Number(buf.readBigUInt64LE(8)),
    lifetime: buf.readUInt32LE(16),
    rxClosing: (flags & 0x1) !== 0,
    txClosing: (flags & 0x2) !== 0,
    seenNonSyn: (flags & 0x4) !== 0,
    txFlagsSeen: buf.readUInt8(22),
    rxFlagsSeen: buf.readUInt8(23),
    srcIdentity: buf.readUInt32LE(24),
  };
}
