// Links through iproute2: veth pairs whose peer lands in a netns under its final name, link state,
// and the facts the datapath needs about a link (ifindex, MAC, MTU).
import { assertIfName, assertMtu, assertNetnsName } from './validate.js';
import { isNotFound, runIp, runIpJson } from './run.js';
import { inNetns, type NetnsRef } from './netns-ref.js';

export interface LinkInfo {
  ifname: string;
  ifindex: number;
  mac: string;
  mtu: number;
  operstate: string;
  up: boolean;
}

interface IpLinkRow {
  ifname: string;
  ifindex: number;
  address?: string;
  mtu: number;
  operstate: string;
  flags: string[];
}

function toLinkInfo(row: IpLinkRow): LinkInfo {
  return { ifname: row.ifname, ifindex: row.ifindex, mac: row.address ?? '', mtu: row.mtu, operstate: row.operstate, up: row.flags.includes('UP') };
}

export interface VethPairSpec {
  /** Host-side name, stays in the current (root) namespace. */
  hostName: string;
  /** Namespace the peer is created in: a name, or a path such as /proc/<pid>/ns/net. */
  peerNetns: NetnsRef;
  /** Name of the peer inside `peerNetns`, e.g. "eth0". */
  peerName: string;
  mtu?: number;
}

/**
 * Creates both ends in one netlink request, so a failure never leaves a half pair behind and the
 * peer name only has to be free inside its own namespace.
 */
export async function createVethPair(spec: VethPairSpec): Promise<void> {
  const host = assertIfName(spec.hostName, 'host veth name');
  const peer = assertIfName(spec.peerName, 'peer veth name');
  const mtu = String(assertMtu(spec.mtu ?? 1500));
  const context = `create veth ${host} with peer ${peer}${inNetns(spec.peerNetns)}`;
  if (typeof spec.peerNetns === 'string') {
    await runIp(context, ['link', 'add', 'name', host, 'mtu', mtu, 'type', 'veth', 'peer', 'name', peer, 'mtu', mtu, 'netns', assertNetnsName(spec.peerNetns)]);
    return;
  }
  // `netns` takes a name or a pid only: create the pair from inside the target namespace and send
  // the host end to this process's namespace (nsenter enters the network namespace alone, so our
  // pid still names the namespace we run in).
  await runIp(context, ['link', 'add', 'name', peer, 'mtu', mtu, 'type', 'veth', 'peer', 'name', host, 'mtu', mtu, 'netns', String(process.pid)], spec.peerNetns);
}

/** Deletes the link (a veth takes its peer along); returns false when it did not exist. */
export async function deleteLink(name: string, netns?: NetnsRef): Promise<boolean> {
  try {
    await runIp(`delete link ${assertIfName(name)}${inNetns(netns)}`, ['link', 'delete', 'dev', name], netns);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function getLink(name: string, netns?: NetnsRef): Promise<LinkInfo> {
  const rows = await runIpJson<IpLinkRow>(`read link ${assertIfName(name)}${inNetns(netns)}`, ['link', 'show', 'dev', name], netns);
  const row = rows[0];
  if (!row) throw new Error(`read link ${name}: ip -j link show returned no row`);
  return toLinkInfo(row);
}

export async function listLinks(netns?: NetnsRef): Promise<LinkInfo[]> {
  const rows = await runIpJson<IpLinkRow>(`list links${inNetns(netns)}`, ['link', 'show'], netns);
  return rows.map(toLinkInfo);
}

export interface LinkSettings {
  up?: boolean;
  mtu?: number;
  /** "none" keeps the kernel from giving the link an IPv6 link-local address (and its ND/MLD chatter). */
  addrgenmode?: 'none' | 'eui64';
}

export async function setLink(name: string, settings: LinkSettings, netns?: NetnsRef): Promise<void> {
  const args = ['link', 'set', 'dev', assertIfName(name)];
  if (settings.mtu !== undefined) args.push('mtu', String(assertMtu(settings.mtu)));
  if (settings.addrgenmode !== undefined) args.push('addrgenmode', settings.addrgenmode);
  if (settings.up !== undefined) args.push(settings.up ? 'up' : 'down');
  await runIp(`configure link ${name}${inNetns(netns)}`, args, netns);
}
