// Checks applied to every name and address before it reaches an iproute2 argument list, so a
// malformed value fails with a message naming it instead of being read by `ip` as an option.
import { isIPv4 } from 'node:net';

/** Linux IFNAMSIZ is 16 including the terminating NUL. */
export const MAX_IFNAME_LENGTH = 15;

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const NETNS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export class InvalidNetworkValueError extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${reason}`);
    this.name = 'InvalidNetworkValueError';
  }
}

export function assertIfName(name: string, field = 'interface name'): string {
  if (name.length === 0 || name.length > MAX_IFNAME_LENGTH) {
    throw new InvalidNetworkValueError(field, name, `must be 1..${MAX_IFNAME_LENGTH} characters (IFNAMSIZ)`);
  }
  if (!IFNAME.test(name)) {
    throw new InvalidNetworkValueError(field, name, 'allowed characters are letters, digits, "_", "." and "-" (not leading)');
  }
  return name;
}

export function assertNetnsName(name: string): string {
  if (!NETNS_NAME.test(name)) {
    throw new InvalidNetworkValueError('netns name', name, 'must be 1..64 of letters, digits, "_", "." and "-" (not leading)');
  }
  return name;
}

export function assertIPv4(ip: string, field = 'IPv4 address'): string {
  if (!isIPv4(ip)) throw new InvalidNetworkValueError(field, ip, 'not a dotted-quad IPv4 address');
  return ip;
}

/** Accepts "a.b.c.d/len" (len 0..32) or the keyword "default". */
export function assertIPv4Prefix(prefix: string, field = 'IPv4 prefix'): string {
  if (prefix === 'default') return prefix;
  const [ip, len, ...rest] = prefix.split('/');
  const bits = Number(len);
  if (ip === undefined || len === undefined || rest.length > 0 || !isIPv4(ip) || !/^\d{1,2}$/.test(len) || bits > 32) {
    throw new InvalidNetworkValueError(field, prefix, 'expected a.b.c.d/len with len 0..32');
  }
  return prefix;
}

export function assertMac(mac: string, field = 'MAC address'): string {
  if (!MAC.test(mac)) throw new InvalidNetworkValueError(field, mac, 'expected six lower-case hex octets separated by ":"');
  return mac;
}

export function assertMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new InvalidNetworkValueError('MTU', mtu, 'must be an integer 68..65535');
  return mtu;
}
