// The node's own networking in the current network namespace, as setupNode and syncNodeRoutes
// make it: cilium_host/cilium_net, cilium_vxlan, sysctls, the masquerade chain and the routes to
// other nodes' pod CIDRs. Everything is made idempotently from what the kernel holds, so a new
// agent process adopts what an earlier one left.
import { parseIPv4Prefix, formatIPv4Prefix, prefixContains } from '../maps/ipv4.js';
import { deleteLink, getLink, setLink, type LinkInfo } from '../netns/link.js';
import { CommandError, isNotFound, runCommand, runIp, runIpJson } from '../netns/run.js';
import { setIpForward, setIpv4Conf } from '../netns/sysctl.js';
import { assertIPv4 } from '../netns/validate.js';
import type { NodeNetworkSpec, RemoteNodeRoute, SyncResult } from '../types.js';
import { DatapathError } from './errors.js';

export const HOST_DEVICE = 'cilium_host';
export const NET_DEVICE = 'cilium_net';
export const OVERLAY_DEVICE = 'cilium_vxlan';
/** VXLAN over IPv4: outer IPv4 (20), UDP (8), VXLAN (8) and inner Ethernet (14) headers. */
export const TUNNEL_OVERHEAD = 50;
/** iptables nat chain holding the masquerade rule; POSTROUTING jumps to it (upstream's name). */
export const MASQUERADE_CHAIN = 'CILIUM_POST_nat';
const FEEDER_COMMENT = `cilium-feeder: ${MASQUERADE_CHAIN}`;
/** Route protocol marking the routes syncNodeRoutes owns, so a restart finds them among others'. */
export const ROUTE_PROTOCOL = 99;

/** Refuses, naming the field, what the kernel or iptables would take for something else. */
export function checkNodeNetworkSpec(spec: NodeNetworkSpec): void {
  const field = (name: string): string => `node network spec ${name}`;
  if (spec.routingMode !== 'tunnel' && spec.routingMode !== 'native') {
    throw new DatapathError(field('routingMode'), `is ${JSON.stringify(spec.routingMode)}, expected "tunnel" or "native"`);
  }
  assertIPv4(spec.nodeIP, field('nodeIP'));
  assertIPv4(spec.routerIP, field('routerIP'));
  const pod = parseIPv4Prefix(spec.podCIDR, field('podCIDR'));
  if (!spec.podCIDR.includes('/')) throw new DatapathError(field('podCIDR'), `${spec.podCIDR} is not a CIDR`);
  if (!prefixContains(pod, parseIPv4Prefix(spec.routerIP))) throw new DatapathError(field('routerIP'), `${spec.routerIP} is not in podCIDR ${spec.podCIDR}`);
  if (spec.nativeRoutingCIDR !== undefined) {
    if (!spec.nativeRoutingCIDR.includes('/')) throw new DatapathError(field('nativeRoutingCIDR'), `${spec.nativeRoutingCIDR} is not a CIDR`);
    parseIPv4Prefix(spec.nativeRoutingCIDR, field('nativeRoutingCIDR'));
  }
  if (!Number.isInteger(spec.tunnelPort) || spec.tunnelPort < 1 || spec.tunnelPort > 65535) {
    throw new DatapathError(field('tunnelPort'), `is ${spec.tunnelPort}, expected an integer 1..65535`);
  }
  if (spec.mtu !== undefined && (!Number.isInteger(spec.mtu) || spec.mtu < 0 || (spec.mtu > 0 && (spec.mtu < 1280 || spec.mtu > 65535)))) {
    throw new DatapathError(field('mtu'), `is ${spec.mtu}, expected 0 (the underlay's) or an integer 1280..65535`);
  }
  if (typeof spec.masquerade !== 'boolean') throw new DatapathError(field('masquerade'), `is ${JSON.stringify(spec.masquerade)}, expected a boolean`);
}

interface IpAddrRow {
  ifname: string;
  mtu: number;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/** The device holding `nodeIP`: the underlay, whose MTU the pods' MTU derives from. */
export async function underlayDevice(nodeIP: string): Promise<{ ifname: string; mtu: number }> {
  const rows = await runIpJson<IpAddrRow>('list addresses', ['-4', 'addr', 'show']);
  const dev = rows.find((r) => r.addr_info?.some((a) => a.family === 'inet' && a.local === nodeIP));
  if (dev === undefined) throw new DatapathError(`node IP ${nodeIP}`, 'is on no interface of this network namespace');
  return { ifname: dev.ifname, mtu: dev.mtu };
}

interface IpLinkDetailRow {
  ifname: string;
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: { external?: boolean; port?: number } };
}

async function linkDetails(name: string): Promise<IpLinkDetailRow | undefined> {
  try {
    return (await runIpJson<IpLinkDetailRow>(`read link ${name}`, ['-d', 'link', 'show', 'dev', name]))[0];
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The per-device sysctls upstream sets on its devices: forward, no reverse-path check, no redirects. */
async function configureCiliumDevice(name: string): Promise<void> {
  await setIpv4Conf(name, 'forwarding', 1);
  await setIpv4Conf(name, 'rp_filter', 0);
  await setIpv4Conf(name, 'accept_local', 1);
  await setIpv4Conf(name, 'send_redirects', 0);
}

/**
 * cilium_host with its peer cilium_net, both NOARP and up, the router IP the only address of
 * cilium_host. A cilium_host that is not a veth paired with cilium_net is replaced.
 */
export async function ensureHostDevices(routerIP: string, mtu: number): Promise<LinkInfo> {
  const host = await linkDetails(HOST_DEVICE);
  if (host?.linkinfo?.info_kind !== 'veth' || host.link !== NET_DEVICE) {
    // Whatever holds either name goes, so the pair can be made whole.
    for (const dev of [HOST_DEVICE, NET_DEVICE]) await deleteLink(dev);
    await runIp(`create ${HOST_DEVICE}/${NET_DEVICE}`, ['link', 'add', HOST_DEVICE, 'type', 'veth', 'peer', 'name', NET_DEVICE]);
  }
  for (const dev of [HOST_DEVICE, NET_DEVICE]) {
    await runIp(`configure ${dev}`, ['link', 'set', 'dev', dev, 'arp', 'off', 'mtu', String(mtu), 'addrgenmode', 'none']);
    await setLink(dev, { up: true });
    await configureCiliumDevice(dev);
  }
  const wanted = `${routerIP}/32`;
  const rows = await runIpJson<IpAddrRow>(`list addresses of ${HOST_DEVICE}`, ['-4', 'addr', 'show', 'dev', HOST_DEVICE]);
  for (const a of rows[0]?.addr_info ?? []) {
    if (a.family === 'inet' && `${a.local}/${a.prefixlen}` !== wanted) await runIp(`remove old router IP from ${HOST_DEVICE}`, ['addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', HOST_DEVICE]);
  }
  await runIp(`set router IP on ${HOST_DEVICE}`, ['addr', 'replace', wanted, 'dev', HOST_DEVICE]);
  return getLink(HOST_DEVICE);
}

/** cilium_vxlan as a collect_md device on `port`, up; one made otherwise is replaced. */
export async function ensureOverlayDevice(port: number): Promise<LinkInfo> {
  const dev = await linkDetails(OVERLAY_DEVICE);
  const fits = dev?.linkinfo?.info_kind === 'vxlan' && dev.linkinfo.info_data?.external === true && dev.linkinfo.info_data.port === port;
  if (dev !== undefined && !fits) await deleteLink(OVERLAY_DEVICE);
  if (!fits) await runIp(`create ${OVERLAY_DEVICE}`, ['link', 'add', OVERLAY_DEVICE, 'type', 'vxlan', 'external', 'dstport', String(port)]);
  await runIp(`configure ${OVERLAY_DEVICE}`, ['link', 'set', 'dev', OVERLAY_DEVICE, 'addrgenmode', 'none']);
  await setLink(OVERLAY_DEVICE, { up: true });
  await configureCiliumDevice(OVERLAY_DEVICE);
  return getLink(OVERLAY_DEVICE);
}

/** Native mode has no tunnel: a cilium_vxlan left by tunnel mode goes. */
export async function removeOverlayDevice(): Promise<void> {
  await deleteLink(OVERLAY_DEVICE);
}

/** Routing on, and the reverse-path filter off as upstream (replies come back through the tunnel). */
export async function enableForwarding(): Promise<void> {
  await setIpForward(true);
  await setIpv4Conf('all', 'rp_filter', 0);
}

function iptables(what: string, args: readonly string[]): Promise<unknown> {
  return runCommand(what, 'iptables', ['-w', '5', ...args]);
}

// How iptables (legacy and nft) says a chain is not there.
const NO_CHAIN = /No chain|does not exist/;

const FEEDER = ['POSTROUTING', '-m', 'comment', '--comment', FEEDER_COMMENT, '-j', MASQUERADE_CHAIN];

async function feederPresent(): Promise<boolean> {
  try {
    await iptables('check masquerade feeder', ['-t', 'nat', '-C', ...FEEDER]);
    return true;
  } catch (err) {
    // 1: no such rule; the chain it jumps to missing is an error (2) of its own.
    if (err instanceof CommandError && (err.exitCode === 1 || NO_CHAIN.test(err.stderr))) return false;
    throw err;
  }
}

/**
 * Upstream's iptables masquerade: pod traffic (source podCIDR) to anything outside
 * nativeRoutingCIDR (or the pod CIDR when none is given) that leaves by a device other than the
 * cilium_ ones goes out with the address of its outgoing device. The chain's rules are replaced in
 * one iptables-restore, so no packet meets a half-written chain; without masquerade the jump and
 * the chain go.
 */
export async function syncMasquerade(spec: NodeNetworkSpec): Promise<void> {
  if (!spec.masquerade) {
    while (await feederPresent()) await iptables('remove masquerade feeder', ['-t', 'nat', '-D', ...FEEDER]);
    for (const op of ['-F', '-X']) {
      try {
        await iptables(`remove ${MASQUERADE_CHAIN}`, ['-t', 'nat', op, MASQUERADE_CHAIN]);
      } catch (err) {
        if (!(err instanceof CommandError && NO_CHAIN.test(err.stderr))) throw err;
      }
    }
    return;
  }
  const pods = formatIPv4Prefix(parseIPv4Prefix(spec.podCIDR));
  const cluster = formatIPv4Prefix(parseIPv4Prefix(spec.nativeRoutingCIDR ?? spec.podCIDR));
  const rules = [
    '*nat',
    `:${MASQUERADE_CHAIN} - [0:0]`,
    `-A ${MASQUERADE_CHAIN} -s ${pods} ! -d ${cluster} ! -o cilium_+ -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE`,
    'COMMIT',
    '',
  ].join('\n');
  await runCommand(`write ${MASQUERADE_CHAIN}`, 'iptables-restore', ['-w', '5', '--noflush'], { input: rules });
  if (!(await feederPresent())) await iptables('add masquerade feeder', ['-t', 'nat', '-I', ...FEEDER.slice(0, 1), '1', ...FEEDER.slice(1)]);
}

/** What one route to another node's pod CIDR is, in the form `ip -j route` reports it. */
export interface NodeRoute {
  dst: string;
  gateway: string;
  dev?: string;
  mtu?: number;
}

/** How routes reach other nodes' pods: through cilium_host (encapsulated there) or the underlay. */
export interface RouteMode {
  routingMode: NodeNetworkSpec['routingMode'];
  routerIP: string;
  podCIDR: string;
  podMtu: number;
}

/** The route each node gets; rejects, naming the route, a malformed or conflicting one. */
export function desiredNodeRoutes(routes: readonly RemoteNodeRoute[], mode: RouteMode): Map<string, NodeRoute> {
  const out = new Map<string, NodeRoute>();
  const nodeOf = new Map<string, string>();
  const own = parseIPv4Prefix(mode.podCIDR);
  for (const r of routes) {
    const what = `node route ${r.podCIDR} via ${r.nodeIP}`;
    if (!r.podCIDR.includes('/')) throw new DatapathError(what, 'podCIDR is not a CIDR');
    const dst = formatIPv4Prefix(parseIPv4Prefix(r.podCIDR, `${what} podCIDR`));
    assertIPv4(r.nodeIP, `${what} nodeIP`);
    const p = parseIPv4Prefix(dst);
    if (prefixContains(p, own) || prefixContains(own, p)) throw new DatapathError(what, `overlaps this node's pod CIDR ${mode.podCIDR}`);
    const other = nodeOf.get(dst);
    if (other !== undefined && other !== r.nodeIP) throw new DatapathError(what, `pod CIDR ${dst} is also given to node ${other}`);
    nodeOf.set(dst, r.nodeIP);
    out.set(dst, mode.routingMode === 'tunnel' ? { dst, gateway: mode.routerIP, dev: HOST_DEVICE, mtu: mode.podMtu } : { dst, gateway: r.nodeIP });
  }
  return out;
}

interface IpRouteRow {
  dst: string;
  gateway?: string;
  dev?: string;
  metrics?: Array<{ mtu?: number }>;
}

/** The routes of our protocol in the main table. */
export async function installedNodeRoutes(): Promise<Map<string, NodeRoute>> {
  const rows = await runIpJson<IpRouteRow>('list node routes', ['-4', 'route', 'show', 'proto', String(ROUTE_PROTOCOL)]);
  const out = new Map<string, NodeRoute>();
  for (const row of rows) {
    const dst = row.dst.includes('/') ? row.dst : `${row.dst}/32`;
    out.set(dst, { dst, gateway: row.gateway ?? '', dev: row.dev, mtu: row.metrics?.find((m) => m.mtu !== undefined)?.mtu });
  }
  return out;
}

function sameRoute(want: NodeRoute, have: NodeRoute): boolean {
  return want.gateway === have.gateway && (want.dev === undefined || want.dev === have.dev) && want.mtu === have.mtu;
}

/** Makes the routes of our protocol `desired`, writing only what differs. */
export async function syncRoutes(desired: Map<string, NodeRoute>): Promise<SyncResult> {
  const result: SyncResult = { added: 0, updated: 0, removed: 0 };
  const installed = await installedNodeRoutes();
  for (const [dst, want] of desired) {
    const have = installed.get(dst);
    if (have !== undefined && sameRoute(want, have)) continue;
    const args = ['route', 'replace', dst, 'via', want.gateway];
    if (want.dev !== undefined) args.push('dev', want.dev, 'src', want.gateway);
    if (want.mtu !== undefined) args.push('mtu', String(want.mtu));
    args.push('proto', String(ROUTE_PROTOCOL));
    await runIp(`route ${dst} via ${want.gateway}`, args);
    if (have === undefined) result.added++;
    else result.updated++;
  }
  for (const dst of installed.keys()) {
    if (desired.has(dst)) continue;
    await runIp(`remove route ${dst}`, ['route', 'del', dst, 'proto', String(ROUTE_PROTOCOL)]);
    result.removed++;
  }
  return result;
}
