// cilium_ipcache_v2: IPv4 prefix -> security identity, tunnel endpoint and flags, an LPM trie.
import { formatIPv4Prefix, ipv4Bytes, ipv4String, parseIPv4Prefix } from './ipv4.js';
import { at, type StructLayout } from './layout.js';
import { ENDPOINT_KEY_IPV4 } from './lxc.js';

export const IPCACHE_KEY_LAYOUT = {
  struct: 'ipcache_key',
  size: 24,
  members: { prefixlen: at(0, 4), cluster_id: at(4, 2), pad1: at(6, 1), family: at(7, 1), ip: at(8, 16) },
} as const satisfies StructLayout;

export const REMOTE_ENDPOINT_INFO_LAYOUT = {
  struct: 'remote_endpoint_info',
  size: 24,
  members: { sec_identity: at(0, 4), tunnel_endpoint: at(4, 16), pad: at(20, 2), key: at(22, 1), flags: at(23, 1) },
} as const satisfies StructLayout;

const K = IPCACHE_KEY_LAYOUT.members;
const V = REMOTE_ENDPOINT_INFO_LAYOUT.members;

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
  buf.writeUInt32LE(PREFIX_BASE_BITS + p.bits, K.prefixlen.offset);
  buf.writeUInt8(ENDPOINT_KEY_IPV4, K.family.offset);
  p.addr.copy(buf, K.ip.offset);
  return buf;
}

export function decodeIpcacheKey(buf: Buffer): string {
  return formatIPv4Prefix({ addr: buf.subarray(K.ip.offset, K.ip.offset + 4), bits: buf.readUInt32LE(K.prefixlen.offset) - PREFIX_BASE_BITS });
}

export function encodeRemoteEndpointInfo(info: RemoteEndpointInfo): Buffer {
  const buf = Buffer.alloc(REMOTE_ENDPOINT_INFO_LAYOUT.size);
  buf.writeUInt32LE(info.identity, V.sec_identity.offset);
  ipv4Bytes(info.tunnelEndpoint, 'tunnel endpoint').copy(buf, V.tunnel_endpoint.offset);
  buf.writeUInt8(info.encryptKey, V.key.offset);
  buf.writeUInt8(info.flags, V.flags.offset);
  return buf;
}

export function decodeRemoteEndpointInfo(buf: Buffer): RemoteEndpointInfo {
  return {
    identity: buf.readUInt32LE(V.sec_identity.offset),
    tunnelEndpoint: ipv4String(buf, V.tunnel_endpoint.offset),
    encryptKey: buf.readUInt8(V.key.offset),
    flags: buf.readUInt8(V.flags.offset),
  };
}
