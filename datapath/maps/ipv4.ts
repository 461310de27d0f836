// IPv4 addresses and MACs as the byte strings map keys and values hold (network order).
import { assertIPv4, assertIPv4Prefix, assertMac } from '../netns/validate.js';

// The 4 bytes of a dotted quad already validated.
function quadBytes(ip: string): Buffer {
  const b = Buffer.alloc(4);
  let octet = 0;
  let i = 0;
  for (let c = 0; c < ip.length; c++) {
    const code = ip.charCodeAt(c);
    if (code === 0x2e) {
      b[i++] = octet;
      octet = 0;
    } else {
      octet = octet * 10 + code - 0x30;
    }
  }
  b[i] = octet;
  return b;
}

export function ipv4Bytes(ip: string, field = 'IPv4 address'): Buffer {
  return quadBytes(assertIPv4(ip, field));
}

export function ipv4String(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export interface IPv4Prefix {
  /** Network address with the host bits cleared. */
  addr: Buffer;
  bits: number;
}

/** "10.0.0.0/8" (host bits are cleared) or a bare address, taken as /32. */
export function parseIPv4Prefix(prefix: string, field = 'IPv4 prefix'): IPv4Prefix {
  const text = prefix.includes('/') ? prefix : `${prefix}/32`;
  assertIPv4Prefix(text, field);
  const [ip = '', len = ''] = text.split('/');
  const bits = Number(len);
  const addr = quadBytes(ip);
  const value = bits === 0 ? 0 : (addr.readUInt32BE(0) & (~0 << (32 - bits))) >>> 0;
  addr.writeUInt32BE(value, 0);
  return { addr, bits };
}

/** Whether every address of `inner` is in `outer`. */
export function prefixContains(outer: IPv4Prefix, inner: IPv4Prefix): boolean {
  if (inner.bits < outer.bits) return false;
  const mask = outer.bits === 0 ? 0 : (~0 << (32 - outer.bits)) >>> 0;
  return ((inner.addr.readUInt32BE(0) & mask) >>> 0) === outer.addr.readUInt32BE(0);
}

export function formatIPv4Prefix(p: IPv4Prefix): string {
  return `${ipv4String(p.addr)}/${p.bits}`;
}

export function macBytes(mac: string, field = 'MAC address'): Buffer {
  return Buffer.from(assertMac(mac.toLowerCase(), field).split(':').map((h) => parseInt(h, 16)));
}

export function macString(buf: Buffer, offset = 0): string {
  return [...buf.subarray(offset, offset + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
