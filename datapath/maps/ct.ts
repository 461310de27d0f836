// cilium_ct4_global / cilium_ct_any4_global: conntrack tuples and the reduced ct_entry.
import { ipv4String } from './ipv4.js';
import { at, type StructLayout } from './layout.js';

export const CT_TUPLE_LAYOUT = {
  struct: 'ipv4_ct_tuple',
  size: 14,
  members: { daddr: at(0, 4), saddr: at(4, 4), dport: at(8, 2), sport: at(10, 2), nexthdr: at(12, 1), flags: at(13, 1) },
} as const satisfies StructLayout;

export const CT_ENTRY_LAYOUT = {
  struct: 'ct_entry',
  size: 40,
  members: {
    packets: at(0, 8),
    bytes: at(8, 8),
    lifetime: at(16, 4),
    flags: at(20, 2),
    tx_flags_seen: at(22, 1),
    rx_flags_seen: at(23, 1),
    src_sec_id: at(24, 4),
    policy_rev: at(28, 4),
    policy_dport: at(32, 2),
    pad0: at(34, 2),
    ifindex: at(36, 4),
  },
} as const satisfies StructLayout;

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
  /** Expiry in seconds since boot, counted in jiffies (within a second of CLOCK_MONOTONIC, never ahead of it). */
  lifetime: number;
  rxClosing: boolean;
  txClosing: boolean;
  seenNonSyn: boolean;
  txFlagsSeen: number;
  rxFlagsSeen: number;
  srcIdentity: number;
  /** Policy revision (cilium_policy_revision) the flow was last allowed at. */
  policyRevision: number;
  /** The veth of the endpoint the flow was last allowed for (while the revision holds). */
  ifindex: number;
}

const TUPLE_F_IN = 1;
const T = CT_TUPLE_LAYOUT.members;
const E = CT_ENTRY_LAYOUT.members;

export function decodeCtTuple(buf: Buffer): CtTuple {
  return {
    daddr: ipv4String(buf, T.daddr.offset),
    saddr: ipv4String(buf, T.saddr.offset),
    dport: buf.readUInt16BE(T.dport.offset),
    sport: buf.readUInt16BE(T.sport.offset),
    protocol: buf.readUInt8(T.nexthdr.offset),
    hook: buf.readUInt8(T.flags.offset) & TUPLE_F_IN ? 'ingress' : 'egress',
  };
}

export function decodeCtEntry(buf: Buffer): CtEntry {
  const flags = buf.readUInt16LE(E.flags.offset);
  return {
    packets: Number(buf.readBigUInt64LE(E.packets.offset)),
    bytes: Number(buf.readBigUInt64LE(E.bytes.offset)),
    lifetime: buf.readUInt32LE(E.lifetime.offset),
    rxClosing: (flags & 0x1) !== 0,
    txClosing: (flags & 0x2) !== 0,
    seenNonSyn: (flags & 0x4) !== 0,
    txFlagsSeen: buf.readUInt8(E.tx_flags_seen.offset),
    rxFlagsSeen: buf.readUInt8(E.rx_flags_seen.offset),
    srcIdentity: buf.readUInt32LE(E.src_sec_id.offset),
    policyRevision: buf.readUInt32LE(E.policy_rev.offset),
    ifindex: buf.readUInt32LE(E.ifindex.offset),
  };
}
