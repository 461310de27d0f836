// cilium_lxc: local endpoints by IP (upstream endpoint_key -> endpoint_info).
import { ipv4Bytes, ipv4String, macBytes, macString } from './ipv4.js';
import { at, type StructLayout } from './layout.js';

export const ENDPOINT_KEY_LAYOUT = {
  struct: 'endpoint_key',
  size: 20,
  members: { ip: at(0, 16), family: at(16, 1), key: at(17, 1), cluster_id: at(18, 2) },
} as const satisfies StructLayout;

export const ENDPOINT_INFO_LAYOUT = {
  struct: 'endpoint_info',
  size: 48,
  members: { ifindex: at(0, 4), unused: at(4, 2), lxc_id: at(6, 2), flags: at(8, 4), pad0: at(12, 4), mac: at(16, 8), node_mac: at(24, 8), sec_id: at(32, 4), parent_ifindex: at(36, 4), pad: at(40, 8) },
} as const satisfies StructLayout;

export const ENDPOINT_KEY_IPV4 = 1;

const K = ENDPOINT_KEY_LAYOUT.members;
const I = ENDPOINT_INFO_LAYOUT.members;

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
  ipv4Bytes(ipv4, 'endpoint IPv4').copy(buf, K.ip.offset);
  buf.writeUInt8(ENDPOINT_KEY_IPV4, K.family.offset);
  return buf;
}

/** The IPv4 address of a key; undefined for another family. */
export function decodeEndpointKey(buf: Buffer): string | undefined {
  return buf.readUInt8(K.family.offset) === ENDPOINT_KEY_IPV4 ? ipv4String(buf, K.ip.offset) : undefined;
}

export function encodeEndpointInfo(info: EndpointInfo): Buffer {
  const buf = Buffer.alloc(ENDPOINT_INFO_LAYOUT.size);
  buf.writeUInt32LE(info.ifindex, I.ifindex.offset);
  buf.writeUInt16LE(info.lxcId, I.lxc_id.offset);
  buf.writeUInt32LE(info.flags, I.flags.offset);
  macBytes(info.mac, 'endpoint MAC').copy(buf, I.mac.offset);
  macBytes(info.nodeMac, 'endpoint node MAC').copy(buf, I.node_mac.offset);
  buf.writeUInt32LE(info.secId, I.sec_id.offset);
  buf.writeUInt32LE(info.parentIfindex, I.parent_ifindex.offset);
  return buf;
}

export function decodeEndpointInfo(buf: Buffer): EndpointInfo {
  return {
    ifindex: buf.readUInt32LE(I.ifindex.offset),
    lxcId: buf.readUInt16LE(I.lxc_id.offset),
    flags: buf.readUInt32LE(I.flags.offset),
    mac: macString(buf, I.mac.offset),
    nodeMac: macString(buf, I.node_mac.offset),
    secId: buf.readUInt32LE(I.sec_id.offset),
    parentIfindex: buf.readUInt32LE(I.parent_ifindex.offset),
  };
}
