// CIDR text as the apiserver parses it in two places. isCidr: as the Kubernetes CEL network
// library's isCIDR() accepts it: Go's netip.ParsePrefix (an
// IPv4 address without leading zeros or an IPv6 address without zone, a slash, a decimal prefix
// length without sign or leading zero, within the family's bit count; host bits may be set), and
// not an IPv4-mapped IPv6 address (::ffff:0:0/96). Node's isIPv4/isIPv6 parse addresses as strictly
// as netip.ParseAddr does. isLooseCidr: as the OpenAPI format "cidr" accepts it (k8s.io/utils
// ParseCIDRSloppy, Go's net.ParseCIDR from before 1.17): leading zeros in IPv4 octets and in the
// prefix length are read as decimal, and IPv4-mapped addresses pass.
import { isIPv4, isIPv6 } from 'node:net';

// The eight 16-bit groups of an address isIPv6 accepted.
function ipv6Groups(address: string): number[] {
  const groups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = address.split('::');
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

function isIPv4Mapped(address: string): boolean {
  const g = ipv6Groups(address);
  return g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
}

export function isCidr(value: string): boolean {
  const slash = value.lastIndexOf('/');
  if (slash < 0) return false;
  const address = value.slice(0, slash);
  const prefix = value.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefix) || address.includes('%')) return false;
  const bits = Number(prefix);
  if (isIPv4(address)) return bits <= 32;
  if (isIPv6(address)) return bits <= 128 && !isIPv4Mapped(address);
  return false;
}

export function isLooseCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const prefix = value.slice(slash + 1);
  // Leading zeros dropped from each dotted-decimal octet (also an IPv6 address's IPv4 tail).
  const address = value.slice(0, slash).replace(/(^|[.:])0+(?=[0-9])/g, '$1');
  if (!/^[0-9]+$/.test(prefix) || address.includes('%')) return false;
  const bits = Number(prefix);
  if (isIPv4(address)) return bits <= 32;
  if (isIPv6(address)) return bits <= 128;
  return false;
}
