// Network namespaces standing in for nodes, the underlay between them and pods inside a node, for
// the cross-node tests and benchmark. Unlike PodNetwork, a pod's host-side veth lives in its node's
// namespace (where the node's datapath runs), not in the caller's. Every name starts with the
// prefix, so a crashed run's leftovers are swept by it.
import { createNetns, deleteNetns, execInNetns, listNetns } from '../../datapath/netns/netns.js';
import { getLink, setLink } from '../../datapath/netns/link.js';
import { addAddress, addRoute, setPermanentNeighbor } from '../../datapath/netns/route.js';
import { runIp } from '../../datapath/netns/run.js';
import type { Pod } from '../../datapath/netns/pod-network.js';

export const UNDERLAY_IFNAME = 'ul0';

/** `sysctl -w` inside the namespace (/proc/sys/net is the caller's namespace's). */
export async function sysctlIn(netns: string, ...settings: string[]): Promise<void> {
  await execInNetns({ path: `/run/netns/${netns}` }, 'sysctl', ['-q', '-w', ...settings]);
}

export class CrossNodeNet {
  private readonly namespaces: string[] = [];
  private pods = 0;

  constructor(readonly prefix: string) {}

  /** A namespace `<prefix>-<name>` with lo up; removed by destroy. */
  async netns(name: string): Promise<string> {
    const ns = `${this.prefix}-${name}`;
    await createNetns(ns);
    this.namespaces.push(ns);
    await setLink('lo', { up: true }, ns);
    return ns;
  }

  /** A veth between two namespaces, `ul0` in both, with `<ip>/24` on each end. */
  async underlay(a: string, aIp: string, b: string, bIp: string, mtu = 1500): Promise<void> {
    await runIp('create underlay', ['link', 'add', 'name', UNDERLAY_IFNAME, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', UNDERLAY_IFNAME, 'mtu', String(mtu), 'netns', b], a);
    for (const [ns, ip] of [[a, aIp], [b, bIp]] as const) {
      await setLink(UNDERLAY_IFNAME, { addrgenmode: 'none', up: true }, ns);
      await addAddress(UNDERLAY_IFNAME, `${ip}/24`, ns);
    }
  }

  /**
   * A pod netns with eth0 (`ip`/32, default via `gateway`) on a veth whose host side is in `node`,
   * with a /32 route to the pod there; neighbours permanent on both sides.
   */
  async pod(node: string, name: string, ip: string, gateway: string, mtu: number): Promise<Pod> {
    const netns = await this.netns(name);
    const hostIfname = `${this.prefix}h${this.pods++}`;
    await runIp(`create pod ${name}`, ['link', 'add', 'name', hostIfname, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', netns], node);
    await setLink(hostIfname, { addrgenmode: 'none', up: true }, node);
    await setLink('eth0', { addrgenmode: 'none', up: true }, netns);
    const host = await getLink(hostIfname, node);
    const peer = await getLink('eth0', netns);
    await addAddress('eth0', `${ip}/32`, netns);
    await addRoute({ to: `${gateway}/32`, dev: 'eth0', scope: 'link' }, netns);
    await addRoute({ to: 'default', via: gateway, dev: 'eth0' }, netns);
    await setPermanentNeighbor('eth0', gateway, host.mac, netns);
    await addRoute({ to: `${ip}/32`, dev: hostIfname, scope: 'link' }, node);
    await setPermanentNeighbor(hostIfname, ip, peer.mac, node);
    return { name, netns, ip, hostIfname, hostIfindex: host.ifindex, hostMac: host.mac, podIfindex: peer.ifindex, podMac: peer.mac };
  }

  /** Removes every namespace made here (their links go with them); safe to call twice. */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    for (const ns of this.namespaces.splice(0).reverse()) await deleteNetns(ns).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, `destroy cross-node network ${this.prefix}`);
  }

  /** Removes namespaces an earlier run left with this prefix. */
  static async sweep(prefix: string): Promise<void> {
    for (const ns of await listNetns()) if (ns.startsWith(`${prefix}-`)) await deleteNetns(ns);
  }
}
