// The cross-node part of `npm run bench:datapath`: iperf3 between a pod on node 1 and a pod on node
// 2 (each node a netns, an underlay veth between them) over VXLAN on UDP 8472, with a plain VXLAN
// device and routes ("none": the kernel alone) and with our datapath in tunnel mode on both nodes
// (cilium_vxlan, the endpoint programs, policy enforced on the server's ingress), alternating over
// rounds (both tunnels cannot hold UDP 8472 at once), so load that drifts on a shared machine
// does not land on one setup only; the medians are reported.
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { execInNetns, spawnInNetns } from '../../datapath/netns/netns.js';
import { getLink } from '../../datapath/netns/link.js';
import { runIp } from '../../datapath/netns/run.js';
import type { CommandOutput, RunOptions } from '../../datapath/netns/run.js';
import { BPFFS_ROOT } from '../../datapath/linux/paths.js';
import { removePinDir } from '../../datapath/linux/testing/fixtures.js';
import { IPPROTO_TCP } from '../../datapath/maps/protocols.js';
import type { IPCacheEntry } from '../../datapath/types.js';
import { ChildSet } from '../datapath/children.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { CrossNodeNet, sysctlIn, UNDERLAY_IFNAME } from '../datapath/cross-node.js';
import { endpointFor } from '../datapath/harness.js';
import type { Pod } from '../../datapath/netns/pod-network.js';
import { NodeProcess } from '../datapath/node-process.js';
import { measureIperf, type IperfPods } from './iperf.js';

const PREFIX = 'ctbx';
const PIN_DIRS = [path.join(BPFFS_ROOT, 'cilium-ts-bench-node-1'), path.join(BPFFS_ROOT, 'cilium-ts-bench-node-2')] as const;
const PORT = 5201;
const TUNNEL_PORT = 8472;
const PLAIN_VNI = 1;
const HOST_ID = 1;
const REMOTE_NODE_ID = 6;
// Two nodes: underlay address, pod CIDR, router IP (the pods' gateway), the pod, its identity.
const NODES = [
  { name: 'node1', ip: '192.168.78.1', podCIDR: '10.78.1.0/24', router: '10.78.1.1', pod: 'client', podIP: '10.78.1.10', identity: 51001, ep: 1, plainIP: '10.78.255.1' },
  { name: 'node2', ip: '192.168.78.2', podCIDR: '10.78.2.0/24', router: '10.78.2.1', pod: 'server', podIP: '10.78.2.10', identity: 51002, ep: 2, plainIP: '10.78.255.2' },
] as const;
const TUNNEL_MTU = 1450;

export interface CrossNodeResult {
  none: number;
  cilium_ts: number;
  runs: { none: number[]; cilium_ts: number[] };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export class CrossNodeBench {
  private readonly net = new CrossNodeNet(PREFIX);
  private readonly children = new ChildSet();
  private readonly netns: string[] = [];
  private readonly pods = new Map<string, Pod>();
  private readonly nodes: NodeProcess[] = [];
  private cleaning?: Promise<void>;

  constructor(
    private readonly seconds: number,
    private readonly rounds: number,
    private readonly progress: (message: string) => void,
  ) {}

  static sweep(): Promise<void> {
    return runCleanup('cross-node bench sweep', [
      ['remove namespaces', () => CrossNodeNet.sweep(PREFIX)],
      ...PIN_DIRS.map((dir) => [`remove ${dir}`, () => removePinDir(dir)] as const),
    ]);
  }

  async run(): Promise<CrossNodeResult> {
    await CrossNodeBench.sweep();
    for (const n of NODES) this.netns.push(await this.net.netns(n.name));
    await this.net.underlay(this.netns[0]!, NODES[0].ip, this.netns[1]!, NODES[1].ip);
    for (const [i, n] of NODES.entries()) {
      await sysctlIn(this.netns[i]!, 'net.ipv4.ip_forward=1');
      this.pods.set(n.pod, await this.net.pod(this.netns[i]!, n.pod, n.podIP, n.router, TUNNEL_MTU));
    }

    for (const [i] of NODES.entries()) this.nodes.push(await NodeProcess.start(this.netns[i]!, PIN_DIRS[i]!, this.children));

    const runs: CrossNodeResult['runs'] = { none: [], cilium_ts: [] };
    for (let round = 0; round < this.rounds; round++) {
      for (const setup of round % 2 === 0 ? (['none', 'cilium_ts'] as const) : (['cilium_ts', 'none'] as const)) {
        if (setup === 'none') await this.plainTunnel();
        else await this.ourDatapath();
        const gbps = (await measureIperf(this.iperfPods(), 'client', 'server', this.seconds, PORT)).gbps;
        runs[setup].push(gbps);
        this.progress(`cross-node round ${round + 1}: ${setup} ${gbps.toFixed(2)} Gbit/s`);
        if (setup === 'none') await this.removePlainTunnel();
        else await this.removeOurDatapath();
      }
    }
    return { none: median(runs.none), cilium_ts: median(runs.cilium_ts), runs };
  }

  private async removePlainTunnel(): Promise<void> {
    for (const ns of this.netns) await runIp('remove plain vxlan', ['link', 'delete', 'dev', 'vx0'], ns);
  }

  /**
   * Takes our tunnel out of the way of the plain one: cilium_vxlan (it holds UDP 8472), the routes
   * and the pods' programs (they would redirect into the removed device). The next ourDatapath
   * makes all of it again, as an agent restart would.
   */
  private async removeOurDatapath(): Promise<void> {
    for (const [i, n] of NODES.entries()) {
      const ns = this.netns[i]!;
      await this.nodes[i]!.call('syncNodeRoutes', []);
      await runIp('remove cilium_vxlan', ['link', 'delete', 'dev', 'cilium_vxlan'], ns);
      await execInNetns({ path: `/run/netns/${ns}` }, 'tc', ['qdisc', 'del', 'dev', this.pod(n.pod).hostIfname, 'clsact']);
    }
  }

  /** VXLAN id 1 between the nodes, each routing the other's pod CIDR into it. */
  private async plainTunnel(): Promise<void> {
    for (const [i, n] of NODES.entries()) {
      const ns = this.netns[i]!;
      const other = NODES[1 - i]!;
      await runIp('plain vxlan', ['link', 'add', 'vx0', 'type', 'vxlan', 'id', String(PLAIN_VNI), 'remote', other.ip, 'local', n.ip, 'dstport', String(TUNNEL_PORT), 'dev', UNDERLAY_IFNAME, 'nolearning'], ns);
      await runIp('plain vxlan up', ['link', 'set', 'vx0', 'addrgenmode', 'none', 'up'], ns);
      await runIp('plain vxlan address', ['addr', 'add', `${n.plainIP}/32`, 'dev', 'vx0'], ns);
    }
    for (const [i] of NODES.entries()) {
      const other = NODES[1 - i]!;
      const otherMac = (await getLink('vx0', this.netns[1 - i])).mac;
      await runIp('plain neighbour', ['neigh', 'replace', other.plainIP, 'lladdr', otherMac, 'dev', 'vx0', 'nud', 'permanent'], this.netns[i]);
      await runIp('plain route', ['route', 'add', other.podCIDR, 'via', other.plainIP, 'dev', 'vx0', 'onlink'], this.netns[i]);
    }
  }

  /** Our datapath on both nodes: tunnel mode, both pods endpoints, the server enforcing ingress. */
  private async ourDatapath(): Promise<void> {
    const podRows: IPCacheEntry[] = NODES.map((n) => ({ prefix: `${n.podIP}/32`, identity: n.identity, tunnelEndpoint: n.ip, flags: 2 }));
    for (const [i, n] of NODES.entries()) {
      const node = this.nodes[i]!;
      const other = NODES[1 - i]!;
      const status = await node.call('setupNode', { routingMode: 'tunnel', nodeIP: n.ip, routerIP: n.router, podCIDR: n.podCIDR, nativeRoutingCIDR: '10.78.0.0/16', masquerade: true, tunnelPort: TUNNEL_PORT });
      if (status.podMtu !== TUNNEL_MTU) throw new Error(`cross-node bench: ${n.name} reports pod MTU ${status.podMtu}, the pods have ${TUNNEL_MTU}`);
      await node.call('syncNodeRoutes', [{ podCIDR: other.podCIDR, nodeIP: other.ip }]);
      await node.call('syncIPCache', 'local', [
        { prefix: `${n.ip}/32`, identity: HOST_ID },
        { prefix: `${n.router}/32`, identity: HOST_ID },
      ]);
      await node.call('syncIPCache', 'node', [{ prefix: `${other.ip}/32`, identity: REMOTE_NODE_ID }]);
      await node.call('syncIPCache', 'endpoint', podRows);
      await node.call('upsertEndpoint', endpointFor(this.pods.get(n.pod)!, n.ep, n.identity));
      const serverPolicy = [{ identity: NODES[0].identity, direction: 'ingress' as const, protocol: IPPROTO_TCP, port: PORT, deny: false }];
      await node.call('syncPolicy', n.ep, n.pod === 'server' ? serverPolicy : [], { ingress: n.pod === 'server', egress: false });
    }
  }

  private iperfPods(): IperfPods {
    const netnsOf = (pod: string): { path: string } => ({ path: `/run/netns/${this.pod(pod).netns}` });
    return {
      pod: (name: string) => this.pod(name),
      spawn: (pod: string, file: string, args: readonly string[]): ChildProcess => spawnInNetns(netnsOf(pod), file, args),
      exec: (pod: string, file: string, args: readonly string[], opts?: RunOptions): Promise<CommandOutput> => execInNetns(netnsOf(pod), file, args, opts),
    };
  }

  private pod(name: string): Pod {
    const p = this.pods.get(name);
    if (p === undefined) throw new Error(`cross-node bench: no pod ${name}`);
    return p;
  }

  cleanup(): Promise<void> {
    this.cleaning ??= runCleanup('cross-node bench cleanup', [
      ['stop node datapaths', () => this.children.killAll()],
      ['remove namespaces', () => this.net.destroy()],
      ...PIN_DIRS.map((dir) => [`remove ${dir}`, () => removePinDir(dir)] as const),
    ]);
    return this.cleaning;
  }
}
