// The "cidr" string format as the apiserver checks it (Go's net.ParseCIDR): an IPv4 or IPv6
// address without zone, a slash, and a decimal prefix length within the family's bit count.
import { isIPv4, isIPv6 } from 'node:net';

export function isCidr(value: string): boolean {
  const slash = value.lastIndexOf('/');
  if (slash < 0) return false;
  const address = value.slice(0, slash);
  const prefix = value.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(prefix) || address.includes('%')) return false;
  const bits = Number(prefix);
  if (isIPv4(address)) return bits <= 32;
  if (isIPv6(address)) return bits <= 128;
  return false;
}
