// A model of the datapath's decisions for tests: the ipcache's longest-prefix lookup (an address no
// prefix covers is world) and bpf/lib/policy.h's two policy-map lookups, by the peer's identity and
// by identity 0, each taking its longest protocol/port prefix, where a deny from either drops.
// datapath/linux/policy-writes.test.ts holds the same policy lookup privately; this one reads the
// map contents policyMapContents builds, so the policy engine is judged by what the kernel would see.
import { decodePolicyKey, decodePolicyValue, FULL_PORT_PREFIX_BITS } from '../../../datapath/maps/policy.js';
import { policyMapContents } from '../../../datapath/maps/policy-entries.js';
import { parseIPv4Prefix } from '../../../datapath/maps/ipv4.js';
import { IPPROTO_ICMP } from '../../../datapath/maps/protocols.js';
import type { Enforcement, IPCacheEntry, PolicyEntry } from '../../../datapath/types.js';
import { IDENTITY_WORLD } from './identities.js';
import type { Direction } from './rule.js';

export interface ModelPacket {
  /** The peer: the source for ingress, the destination for egress. */
  peerIdentity: number;
  direction: Direction;
  protocol: number;
  /** Destination port, or the ICMP type. */
  port: number;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

/** The identity the ipcache gives `ip`: its longest covering prefix, else world. */
export function ipcacheLookup(rows: readonly IPCacheEntry[], ip: string): number {
  const addr = ipToInt(ip);
  let best: { bits: number; identity: number } | undefined;
  for (const row of rows) {
    const p = parseIPv4Prefix(row.prefix);
    const mask = p.bits === 0 ? 0 : (~0 << (32 - p.bits)) >>> 0;
    if (((addr & mask) >>> 0) === p.addr.readUInt32BE(0) && (best === undefined || p.bits > best.bits)) best = { bits: p.bits, identity: row.identity };
  }
  return best?.identity ?? IDENTITY_WORLD;
}

/** Whether the endpoint's policy map, built from these entries, lets the packet pass. */
export function policyAllows(entries: readonly PolicyEntry[], enforcement: Enforcement, pkt: ModelPacket): boolean {
  const map = [...policyMapContents(entries, enforcement).values()].map(({ key, value }) => ({ key: decodePolicyKey(key), deny: decodePolicyValue(value).deny }));
  const egress = pkt.direction === 'egress';
  const bits = ((pkt.protocol & 0xff) << 16) | (pkt.protocol === IPPROTO_ICMP ? pkt.port << 8 : pkt.port);
  const longest = (identity: number): { deny: boolean } | undefined => {
    let best: { len: number; deny: boolean } | undefined;
    for (const { key, deny } of map) {
      if (key.identity !== identity || key.egress !== egress) continue;
      const mask = key.prefixLen === 0 ? 0 : (0xffffff << (FULL_PORT_PREFIX_BITS - key.prefixLen)) & 0xffffff;
      if ((bits & mask) !== (((key.protocol << 16) | key.dport) & mask)) continue;
      if (best === undefined || key.prefixLen > best.len) best = { len: key.prefixLen, deny };
    }
    return best;
  };
  const byPeer = longest(pkt.peerIdentity);
  const byAny = longest(0);
  if (byPeer?.deny === true || byAny?.deny === true) return false;
  return byPeer !== undefined || byAny !== undefined;
}
