// A pod's veth pair as ADD builds it, in two `ip -batch` processes (each process start costs more
// than all the netlink work together). The host side first: the pair is made from here with its
// pod end created in the pod's namespace under its final name, and the host end configured. The
// pod side then needs a process inside the pod's namespace; ADD runs it while the agent builds the
// endpoint, which only needs the host end. Both MACs are chosen here (random, locally
// administered, as upstream's veth setup does), so the permanent neighbour entries on both sides
// can be written in the batches: our datapath does not answer ARP.
//   host: lxc<hash> up, <ip>/32 dev lxc<hash>, pod IP → pod MAC, forwarding on
//   pod:  <ifname> up, <ip>/32, <router>/32 scope link, default via <router>, router → host MAC
import { closeSync, openSync, readSync } from 'node:fs';
import { deleteLink } from '../../datapath/netns/link.js';
import { assertNetnsPath, inNetns, type NetnsRef } from '../../datapath/netns/netns-ref.js';
import { runIpBatch, runIpJson, CommandError } from '../../datapath/netns/run.js';
import { setIpv4Conf } from '../../datapath/netns/sysctl.js';
import { assertIPv4, assertIfName, assertMtu, assertNetnsName } from '../../datapath/netns/validate.js';
import { sha256Hex } from './sha256.js';

// Where iproute2 keeps named namespaces; containerd puts pods' there (/var/run/netns/cni-<uuid>).
const NAMED_NETNS = /^\/(?:var\/)?run\/netns\/([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})$/;

/** A namespace under /run/netns by its name (`ip -n`, one exec), any other by path (nsenter, then ip). */
export function netnsRefOf(netnsPath: string): NetnsRef {
  return NAMED_NETNS.exec(netnsPath)?.[1] ?? { path: netnsPath };
}

const HOST_PREFIX = 'lxc';
// Upstream's Endpoint2IfName: IFNAMSIZ (16) - len("tmp") - 1 hex digits of sha256(<cid>:<ifname>).
const HASH_DIGITS = 12;

/** Host-side name of the veth for one pod interface, as upstream derives it. */
export function hostIfnameFor(containerId: string, ifname: string): string {
  return HOST_PREFIX + sha256Hex(`${containerId}:${ifname}`).slice(0, HASH_DIGITS);
}

/** Random unicast, locally administered MAC (from /dev/urandom: see sha256.ts for why not node:crypto). */
export function randomMac(): string {
  const b = Buffer.alloc(6);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b);
  } finally {
    closeSync(fd);
  }
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export interface PodLinkSpec {
  containerId: string;
  ifname: string;
  netnsPath: string;
  ip: string;
  router: string;
  mtu: number;
  /** MTU of the default route; 0 leaves it to the link. */
  routeMtu: number;
}

export interface PodLink {
  hostIfname: string;
  hostIfindex: number;
  hostMac: string;
  podMac: string;
}

/** How `ip link ... netns X` names the pod's namespace: a name under /run/netns, or a path (iproute2 opens any argument holding a "/"). */
function netnsArg(ref: NetnsRef): string {
  return typeof ref === 'string' ? assertNetnsName(ref) : assertNetnsPath(ref.path);
}

function hostBatch(s: PodLinkSpec, host: string, hostMac: string, podMac: string): string[][] {
  const mtu = String(s.mtu);
  return [
    // One netlink request makes both ends, the pod's in its namespace with its final name: a
    // failure leaves no half pair, the name only has to be free in the pod's namespace, and no
    // device moves between namespaces (a move waits for an RCU grace period).
    ['link', 'add', 'name', host, 'address', hostMac, 'mtu', mtu, 'type', 'veth', 'peer', 'name', s.ifname, 'address', podMac, 'mtu', mtu, 'netns', netnsArg(netnsRefOf(s.netnsPath))],
    ['link', 'set', 'dev', host, 'addrgenmode', 'none', 'up'],
    ['route', 'add', `${s.ip}/32`, 'dev', host, 'scope', 'link'],
    ['neigh', 'replace', s.ip, 'lladdr', podMac, 'dev', host, 'nud', 'permanent'],
    // Its ifindex, from netlink in this netns (/sys/class/net shows the netns of whoever mounted
    // /sys, which an agent entered into a node's netns alone does not share). As JSON: the text
    // form names the peer's namespace, which iproute2 finds by asking about every namespace under
    // /run/netns (one per pod: ~15 ms at 100 pods).
    ['link', 'show', 'dev', host],
  ];
}

function podBatch(s: PodLinkSpec, hostMac: string): string[][] {
  const defaultRoute = ['route', 'add', 'default', 'via', s.router, 'dev', s.ifname];
  if (s.routeMtu > 0) defaultRoute.push('mtu', String(s.routeMtu));
  return [
    ['link', 'set', 'dev', s.ifname, 'addrgenmode', 'none', 'up'],
    ['addr', 'add', `${s.ip}/32`, 'dev', s.ifname],
    ['route', 'add', `${s.router}/32`, 'dev', s.ifname, 'scope', 'link'],
    defaultRoute,
    ['neigh', 'replace', s.router, 'lladdr', hostMac, 'dev', s.ifname, 'nud', 'permanent'],
  ];
}

function checkSpec(s: PodLinkSpec): void {
  assertIfName(s.ifname, 'CNI_IFNAME');
  assertIPv4(s.ip, 'pod IP');
  assertIPv4(s.router, 'router IP');
  assertMtu(s.mtu);
}

/**
 * Creates the pair and configures its host end. A pair left by an earlier ADD of the same
 * container and interface (same derived names) is removed and the creation tried once more, as
 * upstream deletes a stale interface first. On failure the caller removes the pair with
 * removePodLink(hostIfnameFor(...)).
 */
export async function createPodLink(s: PodLinkSpec): Promise<PodLink> {
  checkSpec(s);
  const netns = netnsRefOf(s.netnsPath);
  const host = hostIfnameFor(s.containerId, s.ifname);
  const hostMac = randomMac();
  const podMac = randomMac();
  const context = `create veth ${host} with peer ${s.ifname}${inNetns(netns)} for ${s.ip}`;
  let shown;
  try {
    shown = await runIpBatch(context, hostBatch(s, host, hostMac, podMac), undefined, { json: true });
  } catch (err) {
    if (!(err instanceof CommandError) || !/File exists/.test(err.stderr)) throw err;
    await deleteLink(s.ifname, netns);
    await removePodLink(host);
    shown = await runIpBatch(context, hostBatch(s, host, hostMac, podMac), undefined, { json: true });
  }
  await setIpv4Conf(host, 'forwarding', 1);
  return { hostIfname: host, hostIfindex: hostIfindex(host, shown.stdout), hostMac, podMac };
}

/** Addresses, routes and the router's neighbour entry on the pod's end, inside its namespace. */
export async function configurePodInterface(s: PodLinkSpec, link: PodLink): Promise<void> {
  checkSpec(s);
  const netns = netnsRefOf(s.netnsPath);
  await runIpBatch(`set up ${s.ifname}${inNetns(netns)} (host veth ${link.hostIfname})`, podBatch(s, link.hostMac), netns);
}

/** Both ends, one after the other. */
export async function setupPodLink(s: PodLinkSpec): Promise<PodLink> {
  const link = await createPodLink(s);
  await configurePodInterface(s, link);
  return link;
}

/** The ifindex `ip -j link show` printed (the batch's only output). */
function hostIfindex(host: string, shown: string): number {
  let index: unknown;
  try {
    index = (JSON.parse(shown) as { ifindex?: unknown }[])[0]?.ifindex;
  } catch {
    // reported below with what was printed
  }
  if (typeof index !== 'number' || !Number.isInteger(index) || index <= 0) {
    throw new Error(`read ifindex of host veth ${host}: ip -j link show printed ${JSON.stringify(shown.slice(0, 200))}`);
  }
  return index;
}

/** Deletes the host end (and with it the pod end); false when it was not there. */
export function removePodLink(hostIfname: string): Promise<boolean> {
  return deleteLink(hostIfname);
}

/** Deletes the pod's interface; false when it or its namespace is gone. */
export function removePodInterface(ifname: string, netnsPath: string): Promise<boolean> {
  return deleteLink(ifname, netnsRefOf(netnsPath));
}

interface AddrRow {
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** "a.b.c.d/len" of each address on the pod's interface; throws a CommandError when it does not exist. */
export async function podAddresses(ifname: string, netnsPath: string): Promise<string[]> {
  const netns = netnsRefOf(netnsPath);
  const rows = await runIpJson<AddrRow>(`read addresses of ${ifname}${inNetns(netns)}`, ['addr', 'show', 'dev', assertIfName(ifname)], netns);
  return rows.flatMap((r) => (r.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}
