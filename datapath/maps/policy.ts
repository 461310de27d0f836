// cilium_policy_<id>: one endpoint's policy, an LPM trie (upstream v2 policy_key/policy_entry).
import type { StructLayout } from './layout.js';

export const POLICY_KEY_LAYOUT: StructLayout = {
  struct: 'policy_key',
  size: 12,
  members: { prefixlen: 0, sec_label: 4, egress: 8, protocol: 9, dport: 10 },
};

export const POLICY_ENTRY_LAYOUT: StructLayout = {
  struct: 'policy_entry',
  size: 8,
  members: { proxy_port: 0, flags: 2, auth_type: 3, proxy_port_priority: 4, pad0: 5, pad1: 6 },
};

export const POLICY_MAP_MAX_ENTRIES = 16384;

// sec_label and the egress byte are always part of the trie prefix.
const IDENTITY_PREFIX_BITS = 40;
export const PROTOCOL_PREFIX_BITS = 8;
/** Protocol and port together: the longest port prefix. */
export const FULL_PORT_PREFIX_BITS = 24;

const FLAG_DENY = 0x01;
const PREFIX_SHIFT = 3;

export interface PolicyKey {
  /** Peer identity; 0 is the wildcard looked up for every peer. */
  identity: number;
  egress: boolean;
  protocol: number;
  /** Destination port (host order); for ICMP the type sits in the upper byte. */
  dport: number;
  /** Bits of protocol+port that must match: 0 any protocol, 8 any port, 24 exactly this port. */
  prefixLen: number;
}

export interface PolicyValue {
  deny: boolean;
  /** Repeats the key's prefixLen so the datapath can rank two matches. */
  prefixLen: number;
}

function checkPrefixLen(prefixLen: number): void {
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > FULL_PORT_PREFIX_BITS) {
    throw new RangeError(`policy key prefix length ${prefixLen}: must be an integer 0..${FULL_PORT_PREFIX_BITS}`);
  }
}

/** Bits past the prefix are cleared, so each prefix has exactly one key. */
export function encodePolicyKey(k: PolicyKey): Buffer {
  checkPrefixLen(k.prefixLen);
  const protoPort = ((k.protocol & 0xff) << 16) | (k.dport & 0xffff);
  const mask = k.prefixLen === 0 ? 0 : (0xffffff << (FULL_PORT_PREFIX_BITS - k.prefixLen)) & 0xffffff;
  const masked = protoPort & mask;
  const buf = Buffer.alloc(POLICY_KEY_LAYOUT.size);
  buf.writeUInt32LE(IDENTITY_PREFIX_BITS + k.prefixLen, 0);
  buf.writeUInt32LE(k.identity >>> 0, 4);
  buf.writeUInt8(k.egress ? 1 : 0, 8);
  buf.writeUInt8(masked >>> 16, 9);
  buf.writeUInt16BE(masked & 0xffff, 10);
  return buf;
}

export function decodePolicyKey(buf: Buffer): PolicyKey {
  return {
    identity: buf.readUInt32LE(4),
    egress: buf.readUInt8(8) !== 0,
    protocol: buf.readUInt8(9),
    dport: buf.readUInt16BE(10),
    prefixLen: buf.readUInt32LE(0) - IDENTITY_PREFIX_BITS,
  };
}

export function encodePolicyValue(v: PolicyValue): Buffer {
  checkPrefixLen(v.prefixLen);
  const buf = Buffer.alloc(POLICY_ENTRY_LAYOUT.size);
  buf.writeUInt8((v.deny ? FLAG_DENY : 0) | (v.prefixLen << PREFIX_SHIFT), 2);
  return buf;
}

export function decodePolicyValue(buf: Buffer): PolicyValue {
  const flags = buf.readUInt8(2);
  return { deny: (flags & FLAG_DENY) !== 0, prefixLen: flags >> PREFIX_SHIFT };
}
