// Labels and identities as upstream's CLI prints them (pkg/labels GetPrintableModel, pkg/identity
// NumericIdentity.String).
import { isIP } from 'node:net';

interface ParsedLabel {
  source: string;
  key: string;
  value: string;
}

// pkg/labels parseLabel with the ':' delimiter; "$host" is the short form of reserved:host.
function parseLabel(text: string): ParsedLabel {
  let source = '';
  let rest = text;
  if (text.startsWith('$')) {
    source = 'reserved';
    rest = text.slice(1);
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0) {
      source = text.slice(0, colon);
      rest = text.slice(colon + 1);
    }
  }
  if (source === '') source = 'unspec';
  const eq = rest.indexOf('=');
  if (eq < 0) return { source, key: rest, value: '' };
  if (eq === 0 && source === 'reserved') return { source, key: rest.slice(1), value: '' };
  return { source, key: rest.slice(0, eq), value: rest.slice(eq + 1) };
}

// CIDR label keys write IPv6 colons as dashes; upstream prints the prefix itself.
function cidrKeyPrefix(key: string): string | undefined {
  const text = key.replace(/-/g, ':');
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const bits = Number(text.slice(slash + 1));
  const ip = text.slice(0, slash);
  const family = isIP(ip);
  if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) return undefined;
  // netip prints IPv6 in its canonical (RFC 5952) form, which the URL parser also produces.
  const canonical = family === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
  return `${canonical}/${bits}`;
}

function printable(l: ParsedLabel): string {
  if (l.source === 'cidr') {
    const prefix = cidrKeyPrefix(l.key);
    if (prefix !== undefined) return `cidr:${prefix}`;
  }
  return l.value !== '' ? `${l.source}:${l.key}=${l.value}` : `${l.source}:${l.key}`;
}

/**
 * An identity's or endpoint's label strings as upstream prints them: parsed, one per key (a later
 * label with the same key replaces an earlier one), empty keys dropped, sorted.
 */
export function printableLabels(labels: readonly string[] | undefined): string[] {
  const byKey = new Map<string, ParsedLabel>();
  for (const text of labels ?? []) {
    const l = parseLabel(text);
    if (l.key !== '') byKey.set(l.key, l);
  }
  return [...byKey.values()].map(printable).sort(compareBytes);
}

/** Go's string order (bytewise), which differs from localeCompare. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

// pkg/identity reservedIdentityNames.
const RESERVED_IDENTITY_NAMES: Record<number, string> = {
  0: 'unknown',
  1: 'host',
  2: 'world',
  3: 'unmanaged',
  4: 'health',
  5: 'init',
  6: 'remote-node',
  7: 'kube-apiserver',
  8: 'ingress',
  9: 'world-ipv4',
  10: 'world-ipv6',
  11: 'aggregate-cluster',
  12: 'aggregate-cluster-mesh',
  13: 'aggregate-world',
  14: 'aggregate-remote-node',
};

/** A numeric identity as upstream's `%s` prints it: a reserved identity by name, others by number. */
export function identityName(id: number): string {
  return RESERVED_IDENTITY_NAMES[id] ?? String(id);
}
