// cilium_lxc: local endpoints by IP (upstream endpoint_key -> endpoint_info).
import { ipv4Bytes, ipv4String, macBytes, macString } from './ipv4.js';
import type { StructLayout } from './layout.js';

export const ENDPOINT_KEY_LAYOUT: StructLayout = {
  struct: 'endpoint_key',
  size: 20,
  members: { ip: 0, family: 16, key: 17, cluster_id: 18 },
};

export const ENDPOINT_INFO_LAYOUT: StructLayout = {
  struct: 'endpoint_info',
  size: 48,
  members: { ifindex: 0, unused: 4, lxc_id: 6, flags: 8, pad0: 12, mac: 16, node_mac: 24, sec_id: 32, parent_ifindex: 36, pad: 40 },
};

export const ENDPOINT_KEY_IPV4 = 1;

export interface EndpointInfo {
  ifindex: number;
  /** Endpoint id. */
  lxcId: number;
  flags: number;
  mac: string;
  nodeMac: string;
  /** Security identity of the endpoint. */
  secId: number;
  parentIfindex: number;
}

export function encodeEndpointKey(ipv4: string): Buffer {
  const buf = Buffer.alloc(ENDPOINT_KEY_LAYOUT.size);
  ipv4Bytes(ipv4, 'endpoint IPv4').copy(buf, 0);
  buf.writeUInt8(ENDPOINT_KEY_IPV4, 16);
  return buf;
}

/** The IPv4 address of a key; undefined for another family. */
export function decodeEndpointKey(buf: Buffer): string | undefined {
  return buf.readUInt8(16) === ENDPOINT_KEY_IPV4 ? ipv4String(buf, 0) : undefined;
}

export function encodeEndpointInfo(info: EndpointInfo): Buffer {
  const buf = Buffer.alloc(ENDPOINT_INFO_LAYOUT.size);
  buf.writeUInt32LE(info.ifindex, 0);
  buf.writeUInt16LE(info.lxcId, 6);
  buf.writeUInt32LE(info.flags, 8);
  macBytes(info.mac, 'endpoint MAC').copy(buf, 16);
  macBytes(info.nodeMac, 'endpoint node MAC').copy(buf, 24);
  buf.writeUInt32LE(info.secId, 32);
  buf.writeUInt32LE(info.parentIfindex, 36);
  return buf;
}

export function decodeEndpointInfo(buf: Buffer): EndpointInfo {
  return {
    ifindex: buf.readUInt32LE(0),
    lxcId: buf.readUInt16LE(6),
    flags: buf.readUInt32LE(8),
    mac: macString(buf, 16),
    nodeMac: macString(buf, 24),
    secId: buf.readUInt32LE(32),
    parentIfindex: buf.readUInt32LE(36),
  };
}
