// A pod's veth pair as ADD builds it, in two `ip -batch` processes (the pod side through nsenter,
// then the host side) because each process start costs more than all the netlink work together.
// Both MACs are chosen here (random, locally administered, as upstream's veth setup does), so the
// permanent neighbour entries on both sides can be written in the same batch that creates the pair:
// our datapath does not answer ARP.
//   pod:  <ifname> up, <ip>/32, <router>/32 scope link, default via <router>, router → host MAC
//   host: lxc<hash> up, <ip>/32 dev lxc<hash>, pod IP → pod MAC, forwarding on
import { createHash, randomBytes } from 'node:crypto';
import { deleteLink } from '../../datapath/netns/link.js';
import { inNetns, type NetnsRef } from '../../datapath/netns/netns-ref.js';
import { runIpBatch, runIpJson, CommandError } from '../../datapath/netns/run.js';
import { setIpv4Conf } from '../../datapath/netns/sysctl.js';
import { assertIPv4, assertIfName, assertMtu } from '../../datapath/netns/validate.js';

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
  return HOST_PREFIX + createHash('sha256').update(`${containerId}:${ifname}`).digest('hex').slice(0, HASH_DIGITS);
}

/** Random unicast, locally administered MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
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

function podBatch(s: PodLinkSpec, host: string, hostMac: string, podMac: string): string[][] {
  const mtu = String(s.mtu);
  const defaultRoute = ['route', 'add', 'default', 'via', s.router, 'dev', s.ifname];
  if (s.routeMtu > 0) defaultRoute.push('mtu', String(s.routeMtu));
  return [
    // Created inside the pod's namespace with the final name there; the host end goes to ours
    // (nsenter enters only the network namespace, so our pid still names it).
    ['link', 'add', 'name', s.ifname, 'address', podMac, 'mtu', mtu, 'type', 'veth', 'peer', 'name', host, 'address', hostMac, 'mtu', mtu, 'netns', String(process.pid)],
    ['link', 'set', 'dev', s.ifname, 'addrgenmode', 'none', 'up'],
    ['addr', 'add', `${s.ip}/32`, 'dev', s.ifname],
    ['route', 'add', `${s.router}/32`, 'dev', s.ifname, 'scope', 'link'],
    defaultRoute,
    ['neigh', 'replace', s.router, 'lladdr', hostMac, 'dev', s.ifname, 'nud', 'permanent'],
  ];
}

function hostBatch(s: PodLinkSpec, host: string, podMac: string): string[][] {
  return [
    ['link', 'set', 'dev', host, 'addrgenmode', 'none', 'up'],
    ['route', 'add', `${s.ip}/32`, 'dev', host, 'scope', 'link'],
    ['neigh', 'replace', s.ip, 'lladdr', podMac, 'dev', host, 'nud', 'permanent'],
    // Its ifindex, from netlink in this netns: /sys/class/net shows the netns of whoever mounted
    // /sys, which an agent entered into a node's netns alone does not share.
    ['link', 'show', 'dev', host],
  ];
}

/**
 * Builds the pair. A pair left by an earlier ADD of the same container and interface (same derived
 * names) is removed and the build tried once more, as upstream deletes a stale interface first.
 * On failure the caller removes the pair with removePodLink(hostIfnameFor(...)).
 */
export async function setupPodLink(s: PodLinkSpec): Promise<PodLink> {
  assertIfName(s.ifname, 'CNI_IFNAME');
  assertIPv4(s.ip, 'pod IP');
  assertIPv4(s.router, 'router IP');
  assertMtu(s.mtu);
  const netns = netnsRefOf(s.netnsPath);
  const host = hostIfnameFor(s.containerId, s.ifname);
  const hostMac = randomMac();
  const podMac = randomMac();
  const context = `set up ${s.ifname}${inNetns(netns)} (host veth ${host})`;
  try {
    await runIpBatch(context, podBatch(s, host, hostMac, podMac), netns);
  } catch (err) {
    if (!(err instanceof CommandError) || !/File exists/.test(err.stderr)) throw err;
    await deleteLink(s.ifname, netns);
    await removePodLink(host);
    await runIpBatch(context, podBatch(s, host, hostMac, podMac), netns);
  }
  const shown = await runIpBatch(`set up host veth ${host} for ${s.ip}`, hostBatch(s, host, podMac));
  await setIpv4Conf(host, 'forwarding', 1);
  return { hostIfname: host, hostIfindex: hostIfindex(host, shown.stdout), hostMac, podMac };
}

/** The ifindex `ip link show` printed ("7: lxc...: <...>"). */
function hostIfindex(host: string, shown: string): number {
  const m = /^(\d+): /m.exec(shown);
  if (m === null) throw new Error(`read ifindex of host veth ${host}: ip link show printed ${JSON.stringify(shown.slice(0, 200))}`);
  return Number(m[1]);
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
