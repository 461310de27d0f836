// From the desired policy of one endpoint (PolicyEntry[] of datapath/types.ts) to the exact
// contents of its policy map: ranges become port prefixes, non-enforcing directions get an
// allow-all entry, and every allow covered by a deny of the same identity becomes a deny, which
// is what lets the datapath's two longest-prefix lookups honour "deny always wins".
import type { Enforcement, PolicyDirection, PolicyEntry } from '../types.js';
import { checkPolicyAttributes, encodePolicyKey, encodePolicyValue, FULL_PORT_PREFIX_BITS, POLICY_MAP_MAX_ENTRIES, PROTOCOL_PREFIX_BITS, type PolicyKey } from './policy.js';
import { IPPROTO_ICMP, PORT_PROTOCOLS } from './protocols.js';


export class InvalidPolicyEntryError extends Error {
  constructor(
    readonly entry: PolicyEntry,
    reason: string,
  ) {
    super(`invalid policy entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'InvalidPolicyEntryError';
  }
}

export interface PortPrefix {
  port: number;
  /** Significant leading bits of the 16-bit port, 0..16. */
  bits: number;
}

/** The fewest aligned power-of-two blocks whose union is exactly lo..hi (inclusive). */
export function portRangePrefixes(lo: number, hi: number): PortPrefix[] {
  const out: PortPrefix[] = [];
  let start = lo;
  while (start <= hi) {
    let size = start === 0 ? 0x10000 : start & -start;
    while (start + size - 1 > hi) size /= 2;
    out.push({ port: start, bits: 16 - Math.log2(size) });
    start += size;
  }
  return out;
}

function keysOfEntry(e: PolicyEntry): PolicyKey[] {
  const egress = e.direction === 'egress';
  const fail = (reason: string): never => {
    throw new InvalidPolicyEntryError(e, reason);
  };
  if (!Number.isInteger(e.identity) || e.identity < 0 || e.identity > 0xffffffff) fail('identity must be an integer 0..2^32-1');
  if (!Number.isInteger(e.protocol) || e.protocol < 0 || e.protocol > 255) fail('protocol must be an integer 0..255');
  if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) fail('port must be an integer 0..65535');
  try {
    checkPolicyAttributes(e);
  } catch (err) {
    fail((err as Error).message);
  }
  const base = { identity: e.identity, egress };

  if (e.protocol === IPPROTO_ICMP) {
    // Types sit in the port's upper byte, so a type range is a prefix of it; 0..255 is any type.
    const lastType = e.endPort ?? e.port;
    if (e.port > 255 || !Number.isInteger(lastType) || lastType < e.port || lastType > 255) fail('ICMP types must be 0..255 with port <= endPort');
    return portRangePrefixes(e.port << 8, (lastType << 8) | 0xff).map((p) => ({ ...base, protocol: IPPROTO_ICMP, dport: p.port, prefixLen: PROTOCOL_PREFIX_BITS + p.bits }));
  }
  const end = e.endPort ?? e.port;
  if (!Number.isInteger(end) || end < e.port || end > 65535) fail('endPort must be an integer port..65535');
  const anyPort = e.port === 0 && e.endPort === undefined;
  if (e.protocol !== 0 && !PORT_PROTOCOLS.includes(e.protocol) && !anyPort) fail(`protocol ${e.protocol} has no ports; port must be 0 without endPort`);
  // Any protocol with a port or a port range (even 0..N) means every protocol that has ports, as
  // upstream expands it; only "any protocol, any port" is a wildcard over protocols too.
  const protocols = e.protocol !== 0 ? [e.protocol] : anyPort ? [0] : PORT_PROTOCOLS;
  const keys: PolicyKey[] = [];
  for (const protocol of protocols) {
    if (protocol === 0) {
      keys.push({ ...base, protocol: 0, dport: 0, prefixLen: 0 });
    } else if (anyPort) {
      keys.push({ ...base, protocol, dport: 0, prefixLen: PROTOCOL_PREFIX_BITS });
    } else {
      for (const p of portRangePrefixes(e.port, end)) keys.push({ ...base, protocol, dport: p.port, prefixLen: PROTOCOL_PREFIX_BITS + p.bits });
    }
  }
  return keys;
}

/** Map entries keyed by the hex of the encoded key. */
export type PolicyMapContents = Map<string, { key: Buffer; value: Buffer }>;

interface Desired {
  key: PolicyKey;
  deny: boolean;
  proxyPort: number;
  authType: number;
  cookie: number;
}

/**
 * Two entries that give the same key: a deny wins with its cookie; between two of the same kind
 * the first keeps its cookie and proxy port, and the higher auth type wins, as upstream.
 */
function merge(prev: Desired | undefined, next: Desired): Desired {
  if (prev === undefined || (next.deny && !prev.deny)) return next;
  if (prev.deny && !next.deny) return prev;
  return { ...prev, proxyPort: prev.proxyPort || next.proxyPort, authType: Math.max(prev.authType, next.authType) };
}

function protoPortBits(k: PolicyKey): number {
  return ((k.protocol & 0xff) << 16) | (k.dport & 0xffff);
}

// The key of every shorter prefix of `k` for the same identity and direction: where a covering
// deny would sit.
function coveringKeys(k: PolicyKey): string[] {
  const out: string[] = [];
  const bits = protoPortBits(k);
  for (let len = 0; len < k.prefixLen; len++) {
    const masked = len === 0 ? 0 : bits & ((0xffffff << (FULL_PORT_PREFIX_BITS - len)) & 0xffffff);
    out.push(encodePolicyKey({ ...k, protocol: masked >>> 16, dport: masked & 0xffff, prefixLen: len }).toString('hex'));
  }
  return out;
}

const DIRECTIONS: readonly PolicyDirection[] = ['ingress', 'egress'];

/**
 * The map contents of `entries`; a direction `enforcement` does not enforce gets an allow-all
 * entry, one it enforces gets nothing beyond `entries` (no entries: everything drops).
 */
export function policyMapContents(entries: readonly PolicyEntry[], enforcement: Enforcement): PolicyMapContents {
  for (const direction of DIRECTIONS) {
    if (typeof enforcement?.[direction] !== 'boolean') throw new TypeError(`enforcement.${direction} must be a boolean, got ${String(enforcement?.[direction])}`);
  }
  const desired = new Map<string, Desired>();
  const add = (d: Desired): void => {
    const hex = encodePolicyKey(d.key).toString('hex');
    desired.set(hex, merge(desired.get(hex), d));
  };
  for (const direction of DIRECTIONS) {
    if (!enforcement[direction]) add({ key: { identity: 0, egress: direction === 'egress', protocol: 0, dport: 0, prefixLen: 0 }, deny: false, proxyPort: 0, authType: 0, cookie: 0 });
  }
  for (const e of entries) {
    const attrs = e.deny ? { proxyPort: 0, authType: 0 } : { proxyPort: e.proxyPort ?? 0, authType: e.authType ?? 0 };
    for (const key of keysOfEntry(e)) add({ key, deny: e.deny, ...attrs, cookie: e.cookie ?? 0 });
  }

  // Only an identity and direction with a deny can have an allow under a deny.
  const scope = (k: PolicyKey): string => `${k.identity}/${k.egress}`;
  const withDeny = new Set([...desired.values()].filter((d) => d.deny).map((d) => scope(d.key)));
  const out: PolicyMapContents = new Map();
  for (const [hex, d] of desired) {
    // An allow under a deny becomes that deny, reporting the deny's rule.
    const cover = d.deny || !withDeny.has(scope(d.key)) ? undefined : coveringKeys(d.key).map((c) => desired.get(c)).find((c) => c?.deny === true);
    const value = cover === undefined ? d : { ...cover, key: d.key };
    out.set(hex, { key: encodePolicyKey(d.key), value: encodePolicyValue({ ...value, prefixLen: d.key.prefixLen }) });
  }
  if (out.size > POLICY_MAP_MAX_ENTRIES) {
    throw new RangeError(`policy needs ${out.size} map entries, more than the ${POLICY_MAP_MAX_ENTRIES} a policy map holds`);
  }
  return out;
}
