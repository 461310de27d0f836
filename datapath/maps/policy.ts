// cilium_policy_<id>: one endpoint's policy, an LPM trie (upstream v2 policy_key, newest policy_entry).
import { at, type StructLayout } from './layout.js';

export const POLICY_KEY_LAYOUT = {
  struct: 'policy_key',
  size: 12,
  members: { prefixlen: at(0, 4), sec_label: at(4, 4), egress: at(8, 1), protocol: at(9, 1), dport: at(10, 2) },
} as const satisfies StructLayout;

export const POLICY_ENTRY_LAYOUT = {
  struct: 'policy_entry',
  size: 12,
  members: { proxy_port: at(0, 2), flags: at(2, 1), auth_type: at(3, 1), proxy_port_priority: at(4, 1), pad0: at(5, 1), pad1: at(6, 2), cookie: at(8, 4) },
} as const satisfies StructLayout;

export const POLICY_MAP_MAX_ENTRIES = 16384;

const K = POLICY_KEY_LAYOUT.members;
const V = POLICY_ENTRY_LAYOUT.members;

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
  /** L7 proxy port (upstream proxy_port, big-endian in the map); 0 none. */
  proxyPort: number;
  /** Upstream auth type, 7 bits; 0 none. */
  authType: number;
  /** 32-bit rule cookie reported in drop and policy-verdict events; 0 none. */
  cookie: number;
}

/** What encodePolicyValue needs; the attributes default to 0 (none). */
export type PolicyValueInput = Pick<PolicyValue, 'deny' | 'prefixLen'> & Partial<PolicyValue>;

export const MAX_AUTH_TYPE = 0x7f;

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
  buf.writeUInt32LE(IDENTITY_PREFIX_BITS + k.prefixLen, K.prefixlen.offset);
  buf.writeUInt32LE(k.identity >>> 0, K.sec_label.offset);
  buf.writeUInt8(k.egress ? 1 : 0, K.egress.offset);
  buf.writeUInt8(masked >>> 16, K.protocol.offset);
  buf.writeUInt16BE(masked & 0xffff, K.dport.offset);
  return buf;
}

export function decodePolicyKey(buf: Buffer): PolicyKey {
  return {
    identity: buf.readUInt32LE(K.sec_label.offset),
    egress: buf.readUInt8(K.egress.offset) !== 0,
    protocol: buf.readUInt8(K.protocol.offset),
    dport: buf.readUInt16BE(K.dport.offset),
    prefixLen: buf.readUInt32LE(K.prefixlen.offset) - IDENTITY_PREFIX_BITS,
  };
}

/** Throws a RangeError naming the attribute when proxyPort, authType or cookie is out of range. */
export function checkPolicyAttributes(v: Partial<PolicyValue>): void {
  const check = (name: string, value: number | undefined, max: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > max)) throw new RangeError(`${name} ${value}: must be an integer 0..${max}`);
  };
  check('proxyPort', v.proxyPort, 0xffff);
  check('authType', v.authType, MAX_AUTH_TYPE);
  check('cookie', v.cookie, 0xffffffff);
}

export function encodePolicyValue(v: PolicyValueInput): Buffer {
  checkPrefixLen(v.prefixLen);
  checkPolicyAttributes(v);
  const buf = Buffer.alloc(POLICY_ENTRY_LAYOUT.size);
  buf.writeUInt16BE(v.proxyPort ?? 0, V.proxy_port.offset);
  buf.writeUInt8((v.deny ? FLAG_DENY : 0) | (v.prefixLen << PREFIX_SHIFT), V.flags.offset);
  buf.writeUInt8(v.authType ?? 0, V.auth_type.offset);
  buf.writeUInt32LE(v.cookie ?? 0, V.cookie.offset);
  return buf;
}

export function decodePolicyValue(buf: Buffer): PolicyValue {
  const flags = buf.readUInt8(V.flags.offset);
  return {
    deny: (flags & FLAG_DENY) !== 0,
    prefixLen: flags >> PREFIX_SHIFT,
    proxyPort: buf.readUInt16BE(V.proxy_port.offset),
    authType: buf.readUInt8(V.auth_type.offset) & MAX_AUTH_TYPE,
    cookie: buf.readUInt32LE(V.cookie.offset),
  };
}
