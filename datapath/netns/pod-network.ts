// A set of "pods" for tests and benchmarks: each pod is a named netns with eth0 on a veth pair whose
// host side stays in the root namespace, routed through the host like Cilium's veth mode:
//   pod:  <ip>/32 on eth0, <gateway>/32 dev eth0 scope link, default via <gateway>
//   host: <ip>/32 dev <host veth>, forwarding on the host veth
// Neighbours are permanent on both sides so connectivity never waits on ARP (and works whether or
// not the host has a route to the gateway address). Every name starts with the network's prefix,
// so a crashed run's leftovers can be swept by prefix.
import { randomInt } from 'node:crypto';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createNetns, deleteNetns, execInNetns, listNetns, spawnInNetns } from './netns.js';
import { createVethPair, deleteLink, getLink, listLinks, setLink } from './link.js';
import { addAddress, addRoute, listRoutes, setPermanentNeighbor } from './route.js';
import { setIpv4Conf } from './sysctl.js';
import { InvalidNetworkValueError, MAX_IFNAME_LENGTH, assertIPv4 } from './validate.js';
import type { CommandOutput, RunOptions } from './run.js';

export const POD_IFNAME = 'eth0';

export interface Pod {
  /** Logical name given by the caller, e.g. "client". */
  name: string;
  netns: string;
  ip: string;
  hostIfname: string;
  hostIfindex: number;
  hostMac: string;
  podIfindex: number;
  podMac: string;
}

export interface PodNetworkOptions {
  /** Lower-case letters and digits, 2..10 characters; every netns and link name starts with it. */
  prefix: string;
  /** Logical pod names, at most 200. */
  pods: readonly string[];
  /** First three octets of the pod /24, e.g. "10.77.3"; random in 10.200-249.x when omitted. */
  subnet?: string;
  mtu?: number;
}

const PREFIX = /^[a-z][a-z0-9]{1,9}$/;
const FIRST_POD_HOST = 10;

function assertPrefix(prefix: string): string {
  if (!PREFIX.test(prefix)) throw new InvalidNetworkValueError('pod network prefix', prefix, 'must be 2..10 lower-case letters/digits, starting with a letter');
  return prefix;
}

/** Host veth names are `<prefix>h<index>` (sweep relies on it); netns names `<prefix>-<index>-<name>`. */
function hostIfnameOf(prefix: string, index: number): string {
  const name = `${prefix}h${index}`;
  if (name.length > MAX_IFNAME_LENGTH) throw new InvalidNetworkValueError('host veth name', name, `longer than ${MAX_IFNAME_LENGTH}`);
  return name;
}

/** A /24 that no host route touches yet, so concurrent networks with other prefixes do not collide. */
async function pickFreeSubnet(): Promise<string> {
  const used = new Set((await listRoutes()).map((r) => r.dst.split('.').slice(0, 3).join('.')));
  for (let attempt = 0; attempt < 50; attempt++) {
    const subnet = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`;
    if (!used.has(subnet)) return subnet;
  }
  throw new Error('pick pod subnet: 50 random /24s in 10.200.0.0-10.249.255.0 all carry host routes');
}

export class PodNetwork {
  readonly pods: Pod[] = [];
  private readonly netnsCreated: string[] = [];
  private readonly hostLinksCreated: string[] = [];

  private constructor(
    readonly prefix: string,
    readonly gateway: string,
  ) {}

  /** Builds every pod; on any failure removes what it built and rethrows. */
  static async create(opts: PodNetworkOptions): Promise<PodNetwork> {
    const prefix = assertPrefix(opts.prefix);
    if (opts.pods.length === 0 || opts.pods.length > 200) {
      throw new InvalidNetworkValueError('pod count', opts.pods.length, 'must be 1..200');
    }
    if (new Set(opts.pods).size !== opts.pods.length) throw new InvalidNetworkValueError('pod names', opts.pods, 'must be unique');
    const subnet = opts.subnet ?? (await pickFreeSubnet());
    const net = new PodNetwork(prefix, assertIPv4(`${subnet}.1`, 'pod subnet gateway'));
    try {
      for (const [index, name] of opts.pods.entries()) {
        net.pods.push(await net.addPod(name, index, assertIPv4(`${subnet}.${FIRST_POD_HOST + index}`, `IP of pod ${name}`), opts.mtu ?? 1500));
      }
    } catch (err) {
      await net.destroy().catch((cleanupErr: unknown) => {
        throw new AggregateError([err, cleanupErr], `create pod network ${prefix} failed and so did its cleanup`);
      });
      throw err;
    }
    return net;
  }

  private async addPod(name: string, index: number, ip: string, mtu: number): Promise<Pod> {
    const netns = `${this.prefix}-${index}-${name}`;
    const hostIfname = hostIfnameOf(this.prefix, index);
    await createNetns(netns);
    this.netnsCreated.push(netns);
    await createVethPair({ hostName: hostIfname, peerNetns: netns, peerName: POD_IFNAME, mtu });
    this.hostLinksCreated.push(hostIfname);

    await setLink(hostIfname, { addrgenmode: 'none', up: true });
    await setIpv4Conf(hostIfname, 'forwarding', 1);
    await setLink('lo', { up: true }, netns);
    await setLink(POD_IFNAME, { addrgenmode: 'none', up: true }, netns);
    const host = await getLink(hostIfname);
    const peer = await getLink(POD_IFNAME, netns);

    await addAddress(POD_IFNAME, `${ip}/32`, netns);
    await addRoute({ to: `${this.gateway}/32`, dev: POD_IFNAME, scope: 'link' }, netns);
    await addRoute({ to: 'default', via: this.gateway, dev: POD_IFNAME }, netns);
    await setPermanentNeighbor(POD_IFNAME, this.gateway, host.mac, netns);
    await addRoute({ to: `${ip}/32`, dev: hostIfname, scope: 'link' });
    await setPermanentNeighbor(hostIfname, ip, peer.mac);

    return { name, netns, ip, hostIfname, hostIfindex: host.ifindex, hostMac: host.mac, podIfindex: peer.ifindex, podMac: peer.mac };
  }

  pod(name: string): Pod {
    const pod = this.pods.find((p) => p.name === name);
    if (!pod) throw new Error(`pod network ${this.prefix}: no pod named ${name} (have ${this.pods.map((p) => p.name).join(', ')})`);
    return pod;
  }

  exec(pod: string, file: string, args: readonly string[], opts?: RunOptions): Promise<CommandOutput> {
    return execInNetns(this.pod(pod).netns, file, args, opts);
  }

  spawn(pod: string, file: string, args: readonly string[], opts?: SpawnOptions): ChildProcess {
    return spawnInNetns(this.pod(pod).netns, file, args, opts);
  }

  /** Removes every link and netns this network made; safe to call twice. Host routes go with their links. */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    for (const link of this.hostLinksCreated.splice(0)) await deleteLink(link).catch((e: unknown) => errors.push(e));
    for (const netns of this.netnsCreated.splice(0)) await deleteNetns(netns).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, `destroy pod network ${this.prefix}: ${errors.length} removals failed`);
  }

  /** Removes links and namespaces left by an earlier run with this prefix; returns their names. */
  static async sweep(prefix: string): Promise<string[]> {
    // The prefix is letters and digits only (checked), so it is safe inside a RegExp.
    const linkName = new RegExp(`^${assertPrefix(prefix)}h\\d+$`);
    const netnsName = new RegExp(`^${prefix}-\\d+-`);
    const removed: string[] = [];
    for (const link of await listLinks()) {
      if (linkName.test(link.ifname) && (await deleteLink(link.ifname))) removed.push(link.ifname);
    }
    for (const netns of await listNetns()) {
      if (netnsName.test(netns) && (await deleteNetns(netns))) removed.push(netns);
    }
    return removed;
  }
}
