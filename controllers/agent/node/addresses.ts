// This node's own IPv4 addresses, as the network namespace the agent runs in holds them.
import { networkInterfaces } from 'node:os';

// Devices the agent makes itself: their addresses are pod gateways, never the node's address.
const AGENT_DEVICE = /^(cilium_|lxc)/;

/** Every non-loopback IPv4 address of the node, by device. */
export function nodeIPv4Addresses(): { device: string; address: string }[] {
  return Object.entries(networkInterfaces()).flatMap(([device, addrs]) =>
    (addrs ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => ({ device, address: a.address })),
  );
}

/** The address other nodes reach this one at when none is given: the first IPv4 of a device the agent did not make. */
export function firstNodeIPv4(): string {
  return nodeIPv4Addresses().find((a) => !AGENT_DEVICE.test(a.device))?.address ?? '127.0.0.1';
}
