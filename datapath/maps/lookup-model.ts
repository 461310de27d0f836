// A model of the datapath's decisions for tests: the ipcache's longest-prefix lookup (an address no
// prefix covers is world) and bpf/lib/policy.h's two policy-map lookups, by the peer's identity and
// by identity 0, each taking its longest protocol/port prefix, where a deny from either drops and
// otherwise the longer match decides (the peer's on a tie), an allow that requires authentication
// dropping (189). It reads encoded map contents, so what it judges is what the kernel would see.
import type { Enforcement, IPCacheEntry, PolicyDirection, PolicyEntry } from '../types.js';
import { ipv4Bytes, parseIPv4Prefix } from './ipv4.js';
import { decodePolicyKey, decodePolicyValue, FULL_PORT_PREFIX_BITS } from './policy.js';
import { policyMapContents } from './policy-entries.js';
import { IPPROTO_ICMP } from './protocols.js';

/** bpf/lib/common.h WORLD_ID: the identity of an address no ipcache row covers. */
export const WORLD_ID = 2;

export interface ModelPacket {
  /** The peer: the source for ingress, the destination for egress. */
  peerIdentity: number;
  direction: PolicyDirection;
  protocol: number;
  /** Destination port, or the ICMP type. */
  port: number;
}

/** Encoded policy map entries, keyed by the hex of the key. */
export type EncodedPolicyMap = ReadonlyMap<string, { key: Buffer; value: Buffer }>;

/** The identity the ipcache gives `ip`: its longest covering prefix, else world. */
export function ipcacheLookup(rows: readonly IPCacheEntry[], ip: string): number {
  const addr = ipv4Bytes(ip).readUInt32BE(0);
  let best: { bits: number; identity: number } | undefined;
  for (const row of rows) {
    const p = parseIPv4Prefix(row.prefix);
    const mask = p.bits === 0 ? 0 : (~0 << (32 - p.bits)) >>> 0;
    if (((addr & mask) >>> 0) === p.addr.readUInt32BE(0) && (best === undefined || p.bits > best.bits)) best = { bits: p.bits, identity: row.identity };
  }
  return best?.identity ?? WORLD_ID;
}

/** Whether a policy map holding these entries lets the packet pass. */
export function mapAllows(map: EncodedPolicyMap, pkt: ModelPacket): boolean {
  const decoded = [...map.values()].map(({ key, value }) => {
    const v = decodePolicyValue(value);
    return { key: decodePolicyKey(key), deny: v.deny, auth: v.authType !== 0 };
  });
  const egress = pkt.direction === 'egress';
  const bits = ((pkt.protocol & 0xff) << 16) | (pkt.protocol === IPPROTO_ICMP ? pkt.port << 8 : pkt.port);
  type Match = { len: number; deny: boolean; auth: boolean };
  const longest = (identity: number): Match | undefined => {
    let best: Match | undefined;
    for (const { key, deny, auth } of decoded) {
      if (key.identity !== identity || key.egress !== egress) continue;
      const mask = key.prefixLen === 0 ? 0 : (0xffffff << (FULL_PORT_PREFIX_BITS - key.prefixLen)) & 0xffffff;
      if ((bits & mask) !== (((key.protocol << 16) | key.dport) & mask)) continue;
      if (best === undefined || key.prefixLen > best.len) best = { len: key.prefixLen, deny, auth };
    }
    return best;
  };
  const byPeer = longest(pkt.peerIdentity);
  const byAny = longest(0);
  if (byPeer?.deny === true || byAny?.deny === true) return false;
  const decides = byPeer !== undefined && (byAny === undefined || byPeer.len >= byAny.len) ? byPeer : byAny;
  return decides !== undefined && !decides.auth;
}

/** Whether the endpoint's policy map, built from these entries, lets the packet pass. */
export function policyAllows(entries: readonly PolicyEntry[], enforcement: Enforcement, pkt: ModelPacket): boolean {
  return mapAllows(policyMapContents(entries, enforcement), pkt);
}
