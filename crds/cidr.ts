// What a CIDR field takes: the OpenAPI format "cidr" AND cidrPattern; the apiserver checks both
// on every CIDR field, and so does the runtime validator (ajv, with isLooseCidr as the format).
//
// The format alone is lenient: k8s.io/utils ParseCIDRSloppy (Go's net.ParseCIDR from before 1.17)
// reads leading zeros in IPv4 octets and in the prefix length as decimal. The pattern refuses those
// and leaves the rest of the grammar to the format; it is a plain regular expression that Go's RE2
// (apiserver) and JavaScript's RegExp with the u flag (ajv) read the same way: no lookaround, no
// backreferences, no shorthand classes. Per family:
// - IPv4: four octets 0-255 without leading zeros, prefix length 0-32 without leading zero.
// - IPv6: only hex groups of at most four digits and colons, optionally ending in a dotted IPv4
//   part with the octet rule above; no zone, no other characters; prefix length 0-128 without
//   leading zero. Which group sequences form an address (one "::", eight groups) is the format's
//   job, so the pattern stays short. IPv4-mapped and IPv4-compatible forms are accepted, in hex and
//   dotted notation, as upstream Cilium accepts them (netip.ParsePrefix); refusing every spelling of
//   ::ffff:0:0/96 would need a pattern listing each zero-compression.
// Nothing in the pattern can be skipped or overlap itself, so ajv's backtracking stays linear.
import { isIPv4, isIPv6 } from 'node:net';

const octet = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const ipv4 = `(${octet}[.]){3}${octet}`;
const ipv4PrefixLength = '(3[0-2]|[12]?[0-9])';
const hexGroup = '[0-9a-fA-F]';
const ipv6 = `(${hexGroup}{0,4}:){2,8}(${hexGroup}{1,4}|${ipv4})?`;
const ipv6PrefixLength = '(12[0-8]|1[01][0-9]|[1-9]?[0-9])';

export const cidrPattern = `^(${ipv4}/${ipv4PrefixLength}|${ipv6}/${ipv6PrefixLength})$`;

/** The OpenAPI format "cidr" as the apiserver decides it (ParseCIDRSloppy). */
export function isLooseCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const prefix = value.slice(slash + 1);
  // Leading zeros dropped from IPv4 octets and IPv6 hex groups: the old parser reads any number.
  const address = value.slice(0, slash).replace(/(^|[.:])0+(?=[0-9a-fA-F])/g, '$1');
  if (!/^[0-9]+$/.test(prefix) || address.includes('%')) return false;
  const bits = Number(prefix);
  if (isIPv4(address)) return bits <= 32;
  if (isIPv6(address)) return bits <= 128;
  return false;
}
