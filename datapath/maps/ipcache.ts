// cilium_ipcache (v1 layout): IPv4 prefix -> security identity, an LPM trie.
import { formatIPv4Prefix, ipv4Bytes, ipv4String, parseIPv4Prefix } from './ipv4.js';
import type { StructLayout } from './layout.js';
import { ENDPOINT_KEY_IPV4 } from './lxc.js';

export const IPCACHE_KEY_LAYOUT: StructLayout = {
  struct: 'ipcache_key',
  size: 24,
  members: { prefixlen: 0, cluster_id: 4, pad1: 6, family: 7, ip: 8 },
};

export const REMOTE_ENDPOINT_INFO_LAYOUT: StructLayout = {
  struct: 'remote_endpoint_info',
  size: 12,
  members: { sec_identity: 0, tunnel_endpoint: 4, pad: 8, key: 10, flags: 11 },
};

// The trie prefix also spans cluster_id, pad1 and family ahead of the address.
const PREFIX_BASE_BITS = 32;

export interface RemoteEndpointInfo {
  identity: number;
  /** Node to tunnel to, "0.0.0.0" for none. */
  tunnelEndpoint: string;
  encryptKey: number;
  flags: number;
}

/** Key for "a.b.c.d/n"; host bits are cleared so one prefix always has one key. */
export function encodeIpcacheKey(prefix: string): Buffer {
  const p = parseIPv4Prefix(prefix, 'ipcache prefix');
  const buf = Buffer.alloc(IPCACHE_KEY_LAYOUT.size);
  buf.writeUInt32LE(PREFIX_BASE_BITS + p.bits, 0);
  buf.writeUInt8(ENDPOINT_KEY_IPV4, 7);
  p.addr.copy(buf, 8);
  return buf;
}

export function decodeIpcacheKey(buf: Buffer): string {
  return formatIPv4Prefix({ addr: buf.subarray(8, 12), bits: buf.readUInt32LE(0) - PREFIX_BASE_BITS });
}

export function encodeRemoteEndpointInfo(info: RemoteEndpointInfo): Buffer {
  const buf = Buffer.alloc(REMOTE_ENDPOINT_INFO_LAYOUT.size);
  buf.writeUInt32LE(info.identity, 0);
  ipv4Bytes(info.tunnelEndpoint, 'tunnel endpoint').copy(buf, 4);
  buf.writeUInt8(info.encryptKey, 10);
  buf.writeUInt8(info.flags, 11);
  return buf;
}

export function decodeRemoteEndpointInfo(buf: Buffer): RemoteEndpointInfo {
  return {
    identity: buf.readUInt32LE(0),
    tunnelEndpoint: ipv4String(buf, 4),
    encryptKey: buf.readUInt8(10),
    flags: buf.readUInt8(11),
  };
}
