// cilium_node_config: one array entry with what setupNode made of the node, read by every program.
import { ipv4Bytes, ipv4String } from './ipv4.js';
import { at, type StructLayout } from './layout.js';
import type { RoutingMode } from '../types.js';

export const NODE_CONFIG_LAYOUT = {
  struct: 'node_config',
  size: 16,
  members: { routing_mode: at(0, 4), overlay_ifindex: at(4, 4), host_ifindex: at(8, 4), node_ip: at(12, 4) },
} as const satisfies StructLayout;

const M = NODE_CONFIG_LAYOUT.members;

// ROUTING_MODE_* of bpf/lib/maps.h: an all-zero entry (before setupNode) is native.
const ROUTING_MODE_CODE: Record<RoutingMode, number> = { native: 0, tunnel: 1 };

export interface NodeConfig {
  routingMode: RoutingMode;
  /** cilium_vxlan; 0 when there is none (native mode). */
  overlayIfindex: number;
  hostIfindex: number;
  nodeIP: string;
}

export function encodeNodeConfig(c: NodeConfig): Buffer {
  const buf = Buffer.alloc(NODE_CONFIG_LAYOUT.size);
  buf.writeUInt32LE(ROUTING_MODE_CODE[c.routingMode], M.routing_mode.offset);
  buf.writeUInt32LE(c.overlayIfindex, M.overlay_ifindex.offset);
  buf.writeUInt32LE(c.hostIfindex, M.host_ifindex.offset);
  ipv4Bytes(c.nodeIP, 'node IP').copy(buf, M.node_ip.offset);
  return buf;
}

export function decodeNodeConfig(buf: Buffer): NodeConfig {
  const code = buf.readUInt32LE(M.routing_mode.offset);
  const mode = (Object.keys(ROUTING_MODE_CODE) as RoutingMode[]).find((m) => ROUTING_MODE_CODE[m] === code);
  if (mode === undefined) throw new Error(`cilium_node_config: routing_mode ${code} is not one of ${Object.values(ROUTING_MODE_CODE).join(', ')}`);
  return {
    routingMode: mode,
    overlayIfindex: buf.readUInt32LE(M.overlay_ifindex.offset),
    hostIfindex: buf.readUInt32LE(M.host_ifindex.offset),
    nodeIP: ipv4String(buf, M.node_ip.offset),
  };
}
