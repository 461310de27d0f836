// Addresses, routes and static neighbours through iproute2.
import { assertIfName, assertIPv4, assertIPv4Prefix, assertMac } from './validate.js';
import { runIp, runIpJson } from './run.js';
import { inNetns, type NetnsRef } from './netns-ref.js';

/** `prefix` is "a.b.c.d/len". */
export async function addAddress(dev: string, prefix: string, netns?: NetnsRef): Promise<void> {
  assertIfName(dev);
  assertIPv4Prefix(prefix, `address for ${dev}`);
  await runIp(`add address ${prefix} to ${dev}${inNetns(netns)}`, ['addr', 'add', prefix, 'dev', dev], netns);
}

export interface RouteSpec {
  /** "a.b.c.d/len" or "default". */
  to: string;
  dev: string;
  via?: string;
  scope?: 'link' | 'global';
}

export async function addRoute(route: RouteSpec, netns?: NetnsRef): Promise<void> {
  const args = ['route', 'add', assertIPv4Prefix(route.to, 'route destination')];
  if (route.via !== undefined) args.push('via', assertIPv4(route.via, `gateway of route ${route.to}`));
  args.push('dev', assertIfName(route.dev));
  if (route.scope !== undefined) args.push('scope', route.scope);
  await runIp(`add route ${route.to}${route.via ? ` via ${route.via}` : ''} dev ${route.dev}${inNetns(netns)}`, args, netns);
}

export interface RouteInfo {
  dst: string;
  dev?: string;
  gateway?: string;
}

export async function listRoutes(netns?: NetnsRef): Promise<RouteInfo[]> {
  return runIpJson<RouteInfo>(`list routes${inNetns(netns)}`, ['route', 'show'], netns);
}

/** A permanent neighbour entry: the peer's MAC is known, so no ARP exchange has to succeed first. */
export async function setPermanentNeighbor(dev: string, ip: string, mac: string, netns?: NetnsRef): Promise<void> {
  assertIfName(dev);
  assertIPv4(ip, `neighbour on ${dev}`);
  assertMac(mac, `MAC of neighbour ${ip}`);
  await runIp(`set neighbour ${ip} lladdr ${mac} on ${dev}${inNetns(netns)}`, ['neigh', 'replace', ip, 'lladdr', mac, 'dev', dev, 'nud', 'permanent'], netns);
}
