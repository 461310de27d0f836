// Cross-node datapath against the real kernel. A "node" netns runs our datapath (setupNode,
// endpoint programs, cilium_vxlan); a "peer" netns plays the other node with plain VXLAN devices of
// fixed VNIs: a device's VNI is the security identity it claims, whatever source address it uses.
// Tunnel mode: the identity from the VNI decides the pod's ingress policy (the ipcache rows of the
// peer's addresses deliberately name the other identity), a VNI of host is refused, the pod's and
// the node's own traffic leave encapsulated with their identities as VNI. Native mode: nothing is
// encapsulated, the ipcache decides, pod traffic to the outside is masqueraded. setupNode is
// idempotent and adopted by a new process; syncNodeRoutes writes only differences.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { execInNetns, spawnInNetns } from '../../datapath/netns/netns.js';
import { getLink } from '../../datapath/netns/link.js';
import { CommandError, runIp, runIpJson } from '../../datapath/netns/run.js';
import { makePinDir, removePinDir } from '../../datapath/linux/testing/fixtures.js';
import type { DatapathEvent, DropEvent, IPCacheEntry, NodeNetworkSpec, NodeNetworkStatus, TraceEvent } from '../../datapath/types.js';
import { ChildSet } from './children.js';
import { runCleanup } from './cleanup-steps.js';
import { CrossNodeNet, sysctlIn, UNDERLAY_IFNAME } from './cross-node.js';
import type { Pod } from '../../datapath/netns/pod-network.js';
import { DROP_POLICY, DROP_UNROUTABLE, endpointFor, isDrop } from './harness.js';
import { NodeProcess } from './node-process.js';

const DROP_INVALID_IDENTITY = 171;
// Upstream trace observation points at the tunnel.
const TRACE_TO_OVERLAY = 4;
const TRACE_FROM_OVERLAY = 9;
const ICMP_ECHO_REQUEST = 0x0800;
const ICMP_ECHO_REPLY = 0x0000;
const FILE_BPF_OVERLAY = 3;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const HOST_ID = 1;
const REMOTE_NODE_ID = 6;
const NODE_IP = '192.168.77.1';
const PEER_IP = '192.168.77.2';
const POD_CIDR = '10.77.1.0/24';
const ROUTER_IP = '10.77.1.1';
const POD_IP = '10.77.1.10';
const PEER_POD_CIDR = '10.77.2.0/24';
const POD_EP = 7;
const POD_ID = 3000;
const ALLOWED_ID = 1000;
const DENIED_ID = 2000;
const TUNNEL_PORT = 8472;
const IPERF_PORT = 5201;
// The peer's senders: the VNI each device sends with, and the ipcache identity of its address
// (swapped, so only the VNI can make the allowed one pass).
const SENDERS = {
  allowed: { dev: 'vxa', vni: ALLOWED_ID, ip: '10.77.2.5', ipcacheId: DENIED_ID },
  denied: { dev: 'vxd', vni: DENIED_ID, ip: '10.77.2.6', ipcacheId: ALLOWED_ID },
  hostClaim: { dev: 'vxh', vni: HOST_ID, ip: '10.77.2.7', ipcacheId: ALLOWED_ID },
} as const;
const WORLD_IP = '198.51.100.10';
// In the node's pod CIDR, but no endpoint's and not the node's.
const STRAY_IP = '10.77.1.99';

function spec(routingMode: NodeNetworkSpec['routingMode']): NodeNetworkSpec {
  return { routingMode, nodeIP: NODE_IP, routerIP: ROUTER_IP, podCIDR: POD_CIDR, nativeRoutingCIDR: '10.77.0.0/16', masquerade: true, tunnelPort: TUNNEL_PORT };
}

const inNs = (netns: string): { path: string } => ({ path: `/run/netns/${netns}` });

/** One echo request from `netns` (from `src` when given): true when the reply came within two seconds. */
async function ping(netns: string, ip: string, src?: string): Promise<boolean> {
  try {
    await execInNetns(inNs(netns), 'ping', ['-c', '1', '-W', '2', ...(src === undefined ? [] : ['-I', src]), ip]);
    return true;
  } catch (err) {
    if (err instanceof CommandError && err.exitCode === 1) return false;
    throw err;
  }
}

async function rxPackets(netns: string, dev: string): Promise<number> {
  const rows = await runIpJson<{ stats64: { rx: { packets: number } } }>(`read stats of ${dev}`, ['-s', 'link', 'show', 'dev', dev], netns);
  return rows[0]!.stats64.rx.packets;
}

/** Packets counted by the first rule of `chain`. */
async function ruleHits(netns: string, table: string, chain: string): Promise<number> {
  const { stdout } = await execInNetns(inNs(netns), 'iptables', ['-t', table, '-L', chain, '1', '-v', '-x', '-n']);
  return Number(stdout.trim().split(/\s+/)[0]);
}

function ipv4Hex(ip: string): string {
  return `0x${Buffer.from(ip.split('.').map(Number)).toString('hex')}`;
}

async function natRules(netns: string): Promise<string[]> {
  const { stdout } = await execInNetns(inNs(netns), 'iptables-save', ['-t', 'nat']);
  return stdout.split('\n').filter((l) => l.startsWith('-A '));
}

async function ourRoutes(netns: string): Promise<string[]> {
  const { stdout } = await runIp('list routes', ['-4', 'route', 'show', 'proto', '99'], netns);
  return stdout.trim().split('\n').filter(Boolean);
}

function tracesAt(events: readonly DatapathEvent[], point: number): TraceEvent[] {
  return events.filter((e): e is TraceEvent => e.type === 'trace' && e.observationPoint === point);
}

function dropsOf(events: readonly unknown[], reason: number): DropEvent[] {
  return (events as DropEvent[]).filter((e) => isDrop(e) && e.reason === reason);
}

const IPCACHE_LOCAL: IPCacheEntry[] = [
  { prefix: `${NODE_IP}/32`, identity: HOST_ID },
  { prefix: `${ROUTER_IP}/32`, identity: HOST_ID },
];
const IPCACHE_NODES: IPCacheEntry[] = [{ prefix: `${PEER_IP}/32`, identity: REMOTE_NODE_ID }];
const IPCACHE_PEER_PODS: IPCacheEntry[] = Object.values(SENDERS).map((s) => ({ prefix: `${s.ip}/32`, identity: s.ipcacheId, tunnelEndpoint: PEER_IP, flags: 2 }));

/** A node netns running our datapath and a peer netns on the underlay with it, with their teardown. */
class NodeAndPeer {
  readonly net: CrossNodeNet;
  readonly children = new ChildSet();
  pinDir: string | undefined;
  node!: NodeProcess;
  nodeNs = '';
  peerNs = '';

  constructor(readonly prefix: string) {
    this.net = new CrossNodeNet(prefix);
  }

  async create(): Promise<void> {
    await CrossNodeNet.sweep(this.prefix);
    this.nodeNs = await this.net.netns('node');
    this.peerNs = await this.net.netns('peer');
    await this.net.underlay(this.nodeNs, NODE_IP, this.peerNs, PEER_IP);
    this.pinDir = makePinDir();
    this.node = await NodeProcess.start(this.nodeNs, this.pinDir, this.children);
  }

  teardown(owner: string): Promise<void> {
    return runCleanup(owner, [
      ['stop node datapaths', () => this.children.killAll()],
      ['remove namespaces', () => this.net.destroy()],
      ['remove pin dir', () => removePinDir(this.pinDir)],
    ]);
  }
}

describe('cross-node datapath (real kernel, node and peer namespaces)', function () {
  this.timeout(120_000);

  describe('tunnel mode', () => {
    const t = new NodeAndPeer('ctsovt');
    let pod: Pod;
    let status: NodeNetworkStatus;

    async function applyEndpointState(n: NodeProcess): Promise<void> {
      await n.call('upsertEndpoint', endpointFor(pod, POD_EP, POD_ID));
      await n.call('syncIPCache', 'local', IPCACHE_LOCAL);
      await n.call('syncIPCache', 'node', IPCACHE_NODES);
      await n.call('syncIPCache', 'endpoint', IPCACHE_PEER_PODS);
      await n.call('syncIPCache', 'cidr', []);
      await n.call('syncPolicy', POD_EP, [{ identity: ALLOWED_ID, direction: 'ingress', protocol: 0, port: 0, deny: false }], { ingress: true, egress: false });
    }

    before(async () => {
      await t.create();
      status = await t.node.call('setupNode', spec('tunnel'));
      pod = await t.net.pod(t.nodeNs, 'pod', POD_IP, ROUTER_IP, status.podMtu);
      await applyEndpointState(t.node);

      // The peer: one sending device per claimed identity, each with its own source address and a
      // routing table that sends that source's traffic through it; a receiver for the VNI our node
      // sends the pod's traffic with (the pod's identity), whose MAC is the one its frames carry.
      await sysctlIn(t.peerNs, 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      const devices: Array<{ dev: string; vni: number; mac?: string }> = [...Object.values(SENDERS), { dev: 'vxr', vni: POD_ID, mac: pod.hostMac }];
      for (const [i, d] of devices.entries()) {
        await runIp(`peer ${d.dev}`, ['link', 'add', d.dev, ...(d.mac ? ['address', d.mac] : []), 'mtu', String(status.podMtu), 'type', 'vxlan', 'id', String(d.vni), 'remote', NODE_IP, 'local', PEER_IP, 'dstport', String(TUNNEL_PORT), 'dev', UNDERLAY_IFNAME, 'nolearning'], t.peerNs);
        await runIp(`peer ${d.dev} up`, ['link', 'set', d.dev, 'addrgenmode', 'none', 'up'], t.peerNs);
        const sender = Object.values(SENDERS).find((s) => s.dev === d.dev);
        if (sender === undefined) continue;
        const table = String(100 + i);
        await runIp(`peer ${d.dev} address`, ['addr', 'add', `${sender.ip}/32`, 'dev', d.dev], t.peerNs);
        await runIp(`peer ${d.dev} rule`, ['rule', 'add', 'from', sender.ip, 'table', table], t.peerNs);
        await runIp(`peer ${d.dev} route`, ['route', 'add', POD_CIDR, 'dev', d.dev, 'table', table], t.peerNs);
        for (const ip of [POD_IP, ROUTER_IP, STRAY_IP]) await runIp(`peer ${d.dev} neighbour`, ['neigh', 'replace', ip, 'lladdr', '02:00:00:00:00:01', 'dev', d.dev, 'nud', 'permanent'], t.peerNs);
      }
    });

    after(() => t.teardown('tunnel overlay test teardown'));

    it('setupNode makes cilium_host (router IP, NOARP) and a collect_md cilium_vxlan with its programs, pod MTU 50 below the underlay', async () => {
      expect(status.podMtu).to.equal(1450);
      const host = await runIpJson<{ ifindex: number; flags: string[]; link?: string; addr_info: Array<{ local: string; prefixlen: number }> }>('cilium_host', ['-d', 'addr', 'show', 'dev', 'cilium_host'], t.nodeNs);
      expect(host[0]!.ifindex).to.equal(status.hostIfindex);
      expect(host[0]!.flags).to.include.members(['NOARP', 'UP']);
      expect(host[0]!.link).to.equal('cilium_net');
      expect(host[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).to.deep.equal([`${ROUTER_IP}/32`]);
      const vx = await runIpJson<{ ifindex: number; linkinfo: { info_kind: string; info_data: { external?: boolean; port: number } } }>('cilium_vxlan', ['-d', 'link', 'show', 'dev', 'cilium_vxlan'], t.nodeNs);
      expect(vx[0]!.ifindex).to.equal(status.overlayIfindex);
      expect(vx[0]!.linkinfo.info_kind).to.equal('vxlan');
      expect(vx[0]!.linkinfo.info_data.external).to.equal(true);
      expect(vx[0]!.linkinfo.info_data.port).to.equal(TUNNEL_PORT);
      const { stdout: fwd } = await execInNetns(inNs(t.nodeNs), 'cat', ['/proc/sys/net/ipv4/ip_forward']);
      expect(fwd.trim()).to.equal('1');
      const { stdout: filters } = await execInNetns(inNs(t.nodeNs), 'tc', ['filter', 'show', 'dev', 'cilium_vxlan', 'ingress']);
      // The kernel keeps 15 characters of a program's name.
      expect(filters).to.contain('cil_from_overla');
      const { stdout: hostFilters } = await execInNetns(inNs(t.nodeNs), 'tc', ['filter', 'show', 'dev', 'cilium_host', 'egress']);
      expect(hostFilters).to.contain('cil_from_host');
    });

    it('the identity in the VNI decides ingress policy, not the source address: the allowed VNI passes, another drops with 133 naming it', async () => {
      await t.node.call('drainEvents');
      expect(await ping(t.peerNs, POD_IP, SENDERS.allowed.ip), 'VNI 1000 from an address the ipcache calls 2000').to.equal(true);
      expect(await ping(t.peerNs, POD_IP, SENDERS.denied.ip), 'VNI 2000 from an address the ipcache calls 1000').to.equal(false);
      const drops = dropsOf(await t.node.call('drainEvents'), DROP_POLICY);
      expect(drops).to.have.length.greaterThan(0);
      expect(drops.every((d) => d.srcIdentity === DENIED_ID && d.dstIdentity === POD_ID && d.packet.srcIp === SENDERS.denied.ip && d.direction === 'ingress')).to.equal(true);
    });

    it('carries a TCP stream through the tunnel both ways for the allowed VNI and refuses its SYN for another', async () => {
      const server = spawnInNetns(inNs(pod.netns), 'iperf3', ['--server', '--bind', POD_IP, '--port', String(IPERF_PORT)]);
      try {
        // Bytes the server got in one second from `src`; 0 when no connection was made (iperf3
        // reports that in its JSON, with or without a failing exit status).
        const received = (src: string): Promise<number> =>
          execInNetns(inNs(t.peerNs), 'iperf3', ['--client', POD_IP, '--port', String(IPERF_PORT), '--bind', src, '--time', '1', '--connect-timeout', '2000', '--json'], { timeoutMs: 20_000 }).then(
            (out) => (JSON.parse(out.stdout) as { end?: { sum_received?: { bytes?: number } } }).end?.sum_received?.bytes ?? 0,
            () => 0,
          );
        let allowed = 0;
        // The server needs a moment before it listens.
        for (let attempt = 0; attempt < 20 && allowed === 0; attempt++) {
          allowed = await received(SENDERS.allowed.ip);
          if (allowed === 0) await sleep(250);
        }
        expect(allowed).to.be.greaterThan(0);
        // The tunnel traces a stream's opening and closing segments, not its data.
        const stream = await t.node.call('drainEvents');
        const iperfSegments = (point: number) => tracesAt(stream, point).filter((e) => e.packet.protocol === 6 && (e.packet.dstPort === IPERF_PORT || e.packet.srcPort === IPERF_PORT));
        for (const point of [TRACE_FROM_OVERLAY, TRACE_TO_OVERLAY]) {
          const segments = iperfSegments(point);
          expect(segments.some((e) => e.packet.flags & TCP_SYN), `observation point ${point}`).to.equal(true);
          expect(segments.filter((e) => (e.packet.flags & (TCP_SYN | TCP_FIN | TCP_RST)) === 0), `observation point ${point}`).to.deep.equal([]);
        }
        expect(await received(SENDERS.denied.ip)).to.equal(0);
        const drops = dropsOf(await t.node.call('drainEvents'), DROP_POLICY);
        expect(drops.some((d) => d.srcIdentity === DENIED_ID && d.packet.protocol === 6 && d.packet.dstPort === IPERF_PORT)).to.equal(true);
      } finally {
        server.kill('SIGKILL');
      }
    });

    it('a VNI claiming host is refused with 171 (senders present their host as remote-node)', async () => {
      await t.node.call('drainEvents');
      expect(await ping(t.peerNs, POD_IP, SENDERS.hostClaim.ip)).to.equal(false);
      const drops = dropsOf(await t.node.call('drainEvents'), DROP_INVALID_IDENTITY);
      expect(drops).to.have.length.greaterThan(0);
      expect(drops[0]!.srcIdentity).to.equal(HOST_ID);
      // The drop site: a line of bpf_overlay.c (file id 3).
      expect(drops[0]!.file).to.equal(FILE_BPF_OVERLAY);
      expect(drops[0]!.line).to.be.greaterThan(0);
    });

    it("the pod's traffic to a tunnel-endpoint row leaves encapsulated with the pod's identity as VNI", async () => {
      const before = await rxPackets(t.peerNs, 'vxr');
      expect(await ping(pod.netns, SENDERS.allowed.ip)).to.equal(true);
      expect(await rxPackets(t.peerNs, 'vxr')).to.be.greaterThan(before);
    });

    it('traces packets at the tunnel: from-overlay under the VNI identity as they arrive, to-overlay under the sender identity as they leave', async () => {
      await t.node.call('drainEvents');
      expect(await ping(t.peerNs, POD_IP, SENDERS.allowed.ip)).to.equal(true);
      const events = await t.node.call('drainEvents');
      const request = { srcIp: SENDERS.allowed.ip, dstIp: POD_IP, protocol: 1, srcPort: 0, dstPort: 0, flags: ICMP_ECHO_REQUEST };
      const reply = { srcIp: POD_IP, dstIp: SENDERS.allowed.ip, protocol: 1, srcPort: 0, dstPort: 0, flags: ICMP_ECHO_REPLY };
      // The ipcache calls the sender's address DENIED_ID: the identity is the VNI's.
      expect(tracesAt(events, TRACE_FROM_OVERLAY)).to.deep.include({ type: 'trace', endpointId: 0, srcIdentity: ALLOWED_ID, dstIdentity: 0, observationPoint: TRACE_FROM_OVERLAY, ctState: 0, packet: request });
      expect(tracesAt(events, TRACE_TO_OVERLAY)).to.deep.include({ type: 'trace', endpointId: 0, srcIdentity: POD_ID, dstIdentity: 0, observationPoint: TRACE_TO_OVERLAY, ctState: 0, packet: reply });
      // The arrival is traced before the endpoint judges it, its delivery after.
      const order = events.map((e) => (e.type === 'trace' ? e.observationPoint : -1));
      expect(order.indexOf(TRACE_FROM_OVERLAY)).to.be.lessThan(order.indexOf(0));

      // A denied sender's packet is traced arriving and then dropped by the pod's policy.
      expect(await ping(t.peerNs, POD_IP, SENDERS.denied.ip)).to.equal(false);
      const denied = await t.node.call('drainEvents');
      expect(tracesAt(denied, TRACE_FROM_OVERLAY).some((e) => e.srcIdentity === DENIED_ID && e.packet.srcIp === SENDERS.denied.ip)).to.equal(true);
      expect(dropsOf(denied, DROP_POLICY)).to.have.length.greaterThan(0);
      expect(tracesAt(denied, TRACE_TO_OVERLAY)).to.deep.equal([]);
    });

    it('syncNodeRoutes routes other pod CIDRs via the router IP on cilium_host with the pod MTU, writing only differences', async () => {
      expect(await t.node.call('syncNodeRoutes', [{ podCIDR: PEER_POD_CIDR, nodeIP: PEER_IP }])).to.deep.equal({ added: 1, updated: 0, removed: 0 });
      expect(await ourRoutes(t.nodeNs)).to.have.length(1);
      expect((await ourRoutes(t.nodeNs))[0]).to.match(new RegExp(`^${PEER_POD_CIDR.replace('.', '\\.')} via ${ROUTER_IP} dev cilium_host .*src ${ROUTER_IP} .*mtu 1450`));
      expect(await t.node.call('syncNodeRoutes', [{ podCIDR: PEER_POD_CIDR, nodeIP: PEER_IP }])).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      const two = [{ podCIDR: PEER_POD_CIDR, nodeIP: PEER_IP }, { podCIDR: '10.77.3.0/24', nodeIP: '192.168.77.3' }];
      expect(await t.node.call('syncNodeRoutes', two)).to.deep.equal({ added: 1, updated: 0, removed: 0 });
      expect(await t.node.call('syncNodeRoutes', [two[1]!])).to.deep.equal({ added: 0, updated: 0, removed: 1 });
      expect(await ourRoutes(t.nodeNs)).to.have.length(1);
      const overlap = await t.node.call('syncNodeRoutes', [{ podCIDR: '10.77.1.0/25', nodeIP: PEER_IP }]).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(String(overlap)).to.match(/overlaps this node's pod CIDR/);
      expect(await t.node.call('syncNodeRoutes', [{ podCIDR: PEER_POD_CIDR, nodeIP: PEER_IP }])).to.deep.equal({ added: 1, updated: 0, removed: 1 });
    });

    it("delivers tunnel traffic for the node's own address to its stack, and the node's answer leaves through cilium_host as remote-node (VNI 6)", async () => {
      // The peer cannot take the answer in (its inner frame carries cilium_host's MAC as source and
      // destination, as upstream's), so both halves are counted where they arrive.
      await execInNetns(inNs(t.nodeNs), 'iptables', ['-A', 'INPUT', '-s', SENDERS.allowed.ip, '-d', ROUTER_IP, '-p', 'icmp', '-j', 'ACCEPT']);
      // VXLAN header at byte 28 of the outer IPv4 packet, the VNI in its bytes 4-6; the inner IPv4
      // header at 50 (outer 20, UDP 8, VXLAN 8, Ethernet 14).
      const vni6 = `32>>8=${REMOTE_NODE_ID} && 62=${ipv4Hex(ROUTER_IP)} && 66=${ipv4Hex(SENDERS.allowed.ip)}`;
      await execInNetns(inNs(t.peerNs), 'iptables', ['-t', 'raw', '-A', 'PREROUTING', '-s', NODE_IP, '-p', 'udp', '--dport', String(TUNNEL_PORT), '-m', 'u32', '--u32', vni6, '-j', 'ACCEPT']);
      await ping(t.peerNs, ROUTER_IP, SENDERS.allowed.ip);
      expect(await ruleHits(t.nodeNs, 'filter', 'INPUT'), 'echo requests the node stack took in').to.be.greaterThan(0);
      expect(await ruleHits(t.peerNs, 'raw', 'PREROUTING'), 'echo replies the peer got with VNI 6').to.be.greaterThan(0);
    });

    it('drops tunnel traffic for an address that is neither an endpoint nor the node (151)', async () => {
      await t.node.call('drainEvents');
      expect(await ping(t.peerNs, STRAY_IP, SENDERS.allowed.ip)).to.equal(false);
      const drops = dropsOf(await t.node.call('drainEvents'), DROP_UNROUTABLE);
      expect(drops.some((d) => d.srcIdentity === ALLOWED_ID && d.packet.dstIp === STRAY_IP)).to.equal(true);
    });

    it('setupNode again changes nothing: same devices, one masquerade rule and one jump to it', async () => {
      const again = await t.node.call('setupNode', spec('tunnel'));
      expect(again).to.deep.equal(status);
      const rules = await natRules(t.nodeNs);
      expect(rules.filter((r) => r.includes('-j MASQUERADE'))).to.have.length(1);
      expect(rules.filter((r) => r.startsWith('-A POSTROUTING') && r.includes('-j CILIUM_POST_nat'))).to.have.length(1);
      expect(rules.find((r) => r.includes('-j MASQUERADE'))).to.match(/-s 10\.77\.1\.0\/24 ! -d 10\.77\.0\.0\/16 ! -o cilium_\+/);
      expect(await t.node.call('syncNodeRoutes', [{ podCIDR: PEER_POD_CIDR, nodeIP: PEER_IP }])).to.deep.equal({ added: 0, updated: 0, removed: 0 });
    });

    it('a new process adopts the devices, routes and pins: same ifindexes, programs replaced in place, policy still enforced', async () => {
      const oldProgram = await overlayProgramId(t.nodeNs);
      await t.node.exit();
      t.node = await NodeProcess.start(t.nodeNs, t.pinDir!, t.children);
      const adopted = await t.node.call('setupNode', spec('tunnel'));
      expect(adopted).to.deep.equal(status);
      expect(await t.node.call('syncNodeRoutes', [{ podCIDR: PEER_POD_CIDR, nodeIP: PEER_IP }])).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(await overlayProgramId(t.nodeNs)).to.not.equal(oldProgram);
      await applyEndpointState(t.node);
      await t.node.call('drainEvents');
      expect(await ping(t.peerNs, POD_IP, SENDERS.allowed.ip)).to.equal(true);
      expect(await ping(t.peerNs, POD_IP, SENDERS.denied.ip)).to.equal(false);
      expect(dropsOf(await t.node.call('drainEvents'), DROP_POLICY).some((d) => d.srcIdentity === DENIED_ID)).to.equal(true);
    });
  });

  describe('native mode', () => {
    const t = new NodeAndPeer('ctsovn');
    let pod: Pod;
    let status: NodeNetworkStatus;

    before(async () => {
      await t.create();
      // A cilium_vxlan left by tunnel mode goes when the node switches to native.
      await t.node.call('setupNode', spec('tunnel'));
      status = await t.node.call('setupNode', spec('native'));
      pod = await t.net.pod(t.nodeNs, 'pod', POD_IP, ROUTER_IP, status.podMtu);
      await t.node.call('upsertEndpoint', endpointFor(pod, POD_EP, POD_ID));
      await t.node.call('syncIPCache', 'local', IPCACHE_LOCAL);
      await t.node.call('syncIPCache', 'node', IPCACHE_NODES);
      await t.node.call('syncIPCache', 'endpoint', [
        { prefix: `${SENDERS.allowed.ip}/32`, identity: ALLOWED_ID, tunnelEndpoint: PEER_IP, flags: 2 },
        { prefix: `${SENDERS.denied.ip}/32`, identity: DENIED_ID, tunnelEndpoint: PEER_IP, flags: 2 },
      ]);
      await t.node.call('syncPolicy', POD_EP, [{ identity: ALLOWED_ID, direction: 'ingress', protocol: 0, port: 0, deny: false }], { ingress: true, egress: false });
      await t.node.call('syncNodeRoutes', [{ podCIDR: PEER_POD_CIDR, nodeIP: PEER_IP }]);
      await runIp('node default route', ['route', 'add', 'default', 'via', PEER_IP], t.nodeNs);

      // The peer: the other node's pods and the world as local addresses; it routes our pod CIDR
      // back to the node, and refuses what would show the translation went wrong: our pods'
      // addresses towards the world, the node's address towards its pods.
      for (const ip of [SENDERS.allowed.ip, SENDERS.denied.ip, WORLD_IP]) await runIp('peer address', ['addr', 'add', `${ip}/32`, 'dev', 'lo'], t.peerNs);
      await runIp('peer route', ['route', 'add', POD_CIDR, 'via', NODE_IP], t.peerNs);
      await execInNetns(inNs(t.peerNs), 'iptables', ['-A', 'INPUT', '-s', POD_CIDR, '-d', WORLD_IP, '-j', 'DROP']);
      await execInNetns(inNs(t.peerNs), 'iptables', ['-A', 'INPUT', '-s', NODE_IP, '-d', SENDERS.allowed.ip, '-j', 'DROP']);
    });

    after(() => t.teardown('native overlay test teardown'));

    it('has no cilium_vxlan, the underlay MTU for pods, and routes other pod CIDRs via their node', async () => {
      expect(status.podMtu).to.equal(1500);
      expect(status.overlayIfindex).to.equal(undefined);
      const { stdout } = await runIp('links', ['link', 'show'], t.nodeNs);
      expect(stdout).to.not.contain('cilium_vxlan');
      expect(await ourRoutes(t.nodeNs)).to.deep.equal([`${PEER_POD_CIDR} via ${PEER_IP} dev ${UNDERLAY_IFNAME} `.trim()]);
    });

    it('routes pod traffic to a tunnel-endpoint row without encapsulation or masquerade, and its replies come back', async () => {
      expect(await ping(pod.netns, SENDERS.allowed.ip)).to.equal(true);
    });

    it('takes the identity of routed traffic from the ipcache: the allowed address passes, another drops with 133', async () => {
      await t.node.call('drainEvents');
      expect(await ping(t.peerNs, POD_IP, SENDERS.allowed.ip)).to.equal(true);
      expect(await ping(t.peerNs, POD_IP, SENDERS.denied.ip)).to.equal(false);
      const drops = dropsOf(await t.node.call('drainEvents'), DROP_POLICY);
      expect(drops).to.have.length.greaterThan(0);
      expect(drops.every((d) => d.srcIdentity === DENIED_ID && d.packet.srcIp === SENDERS.denied.ip)).to.equal(true);
    });

    it("masquerades pod traffic leaving the node for the outside to the node's address", async () => {
      expect(await ping(pod.netns, WORLD_IP)).to.equal(true);
      const { stdout } = await execInNetns(inNs(t.nodeNs), 'iptables', ['-t', 'nat', '-L', 'CILIUM_POST_nat', '-v', '-x', '-n']);
      const masq = stdout.split('\n').find((l) => l.includes('MASQUERADE'));
      expect(Number(masq?.trim().split(/\s+/)[0])).to.be.greaterThan(0);
    });

    it('without masquerade the jump and the chain go, and pod traffic leaves with its own address', async () => {
      await t.node.call('setupNode', { ...spec('native'), masquerade: false });
      expect((await natRules(t.nodeNs)).filter((r) => r.includes('CILIUM_POST_nat'))).to.deep.equal([]);
      expect(await ping(pod.netns, WORLD_IP), 'the peer drops our pod addresses towards the world').to.equal(false);
    });

    it('takes the device MTU from the spec when one is given', async () => {
      const status = await t.node.call('setupNode', { ...spec('native'), masquerade: false, mtu: 1400 });
      expect(status.podMtu).to.equal(1400);
      expect((await getLink('cilium_host', t.nodeNs)).mtu).to.equal(1400);
    });
  });
});

/** The id of the program on cilium_vxlan's ingress, read from inside the node namespace. */
async function overlayProgramId(netns: string): Promise<number> {
  const { stdout } = await execInNetns(inNs(netns), 'tc', ['filter', 'show', 'dev', 'cilium_vxlan', 'ingress']);
  const id = / id (\d+)/.exec(stdout)?.[1];
  if (id === undefined) throw new Error(`no program on cilium_vxlan ingress in ${netns}: ${stdout}`);
  return Number(id);
}
