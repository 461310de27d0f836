// Two real agents (cmd/cilium-agent), each in a network namespace of its own on a bridge, against
// the real apiserver (reached through a TCP relay on the bridge, as nodes reach a control plane),
// in both routing modes: each makes its node's networking (cilium_host, in tunnel mode
// cilium_vxlan, routes to the other node) and its health endpoint; the ipcache holds every local
// address as host, the other node as remote-node and its health address behind its node; a node
// reaches the other node's health endpoint and the two health endpoints reach each other (through
// the VXLAN tunnel in tunnel mode); the CNI gets the MTUs of the mode.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { KubeConfig } from '@kubernetes/client-node';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { BpfMap } from '../../../datapath/libbpf/map.js';
import { makePinDir, removePinDir } from '../../../datapath/linux/testing/fixtures.js';
import { decodeIpcacheKey, decodeRemoteEndpointInfo } from '../../../datapath/maps/ipcache.js';
import { createNetns, deleteNetns, execInNetns } from '../../../datapath/netns/netns.js';
import { runIp, runIpBatch, runIpJson } from '../../../datapath/netns/run.js';
import { AgentClient } from '../../../controllers/agent/api/client.js';
import { healthNetnsName } from '../../../controllers/agent/node/health-endpoint.js';
import { isNotFound, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { ciliumNodes, objectPath } from '../../../controllers/runtime/kinds.js';
import { sharedControlPlane } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';

const BRIDGE = 'ctsit-br';
const BRIDGE_IP = '172.31.251.1';
const NATIVE_CIDR = '10.234.0.0/16';
const ENTRY = path.join(path.dirname(new URL(import.meta.url).pathname), '../../../cmd/cilium-agent.ts');

interface TestNode {
  index: number;
  name: string;
  netns: string;
  hostVeth: string;
  ip: string;
  podCIDR: string;
  pinDir: string;
  stateDir: string;
  child?: ChildProcess;
  output: string;
}

type Row = { identity: number; tunnelEndpoint: string };

for (const mode of ['tunnel', 'native'] as const) describe(`two agents in two network namespaces, ${mode} routing (real apiserver, real kernel)`, function () {
  this.timeout(240_000);
  const tag = `${process.pid % 100000}${mode[0]}`;
  let client: ApiClient;
  let relay: net.Server | undefined;
  // The relay's connections: ended at cleanup, as a peer in a deleted netns never answers a close.
  const relayed = new Set<net.Socket>();
  let tmp: string | undefined;
  const nodes: TestNode[] = [];

  const ping = (netns: string, ip: string) =>
    execInNetns(netns, 'ping', ['-c', '1', '-W', '2', ip]).then(
      () => true,
      () => false,
    );
  const logged = (n: TestNode, message: string) => n.output.includes(`"message":"${message}"`);

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    tmp = await mkdtemp(path.join(tmpdir(), 'cilium-ts-two-nodes-'));
    await runIpBatch('test bridge', [
      ['link', 'add', BRIDGE, 'type', 'bridge'],
      ['addr', 'add', `${BRIDGE_IP}/24`, 'dev', BRIDGE],
      ['link', 'set', BRIDGE, 'up'],
    ]);
    // The nodes reach the apiserver at the bridge address, as cluster nodes reach their control plane.
    const apiserver = new URL(cp.kubeConfig.getCurrentCluster()?.server ?? '');
    relay = net.createServer((c) => {
      const upstream = net.connect(Number(apiserver.port), apiserver.hostname);
      relayed.add(c).add(upstream);
      c.on('close', () => relayed.delete(c));
      upstream.on('close', () => relayed.delete(upstream));
      c.pipe(upstream).pipe(c);
      c.on('error', () => upstream.destroy());
      upstream.on('error', () => c.destroy());
    });
    relay.listen(0, BRIDGE_IP);
    await once(relay, 'listening');
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => ({ ...c, server: `https://${BRIDGE_IP}:${(relay?.address() as net.AddressInfo).port}`, tlsServerName: 'localhost' })),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const kubeconfig = path.join(tmp, 'kubeconfig');
    await writeFile(kubeconfig, kc.exportConfig());

    for (const index of [1, 2]) {
      const n: TestNode = {
        index,
        name: `ctsit-${tag}-${index}`,
        netns: `ctsit-${tag}-${index}`,
        hostVeth: `ctsit${tag}v${index}`.slice(0, 15),
        ip: `172.31.251.${10 + index}`,
        podCIDR: `10.234.${index}.0/24`,
        pinDir: makePinDir(),
        stateDir: await mkdtemp(path.join(tmp, `agent-${index}-`)),
        output: '',
      };
      nodes.push(n);
      await createNetns(n.netns);
      await runIpBatch(`node ${index} link`, [
        ['link', 'add', n.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.netns],
        ['link', 'set', n.hostVeth, 'master', BRIDGE, 'up'],
      ]);
      await runIpBatch(
        `node ${index} addresses`,
        [
          ['addr', 'add', `${n.ip}/24`, 'dev', 'eth0'],
          ['link', 'set', 'lo', 'up'],
          ['link', 'set', 'eth0', 'up'],
          ['route', 'add', 'default', 'via', BRIDGE_IP],
        ],
        n.netns,
      );
      const args = [
        `--net=/run/netns/${n.netns}`,
        process.execPath, '--import', 'tsx', ENTRY,
        '--node-name', n.name,
        '--k8s-kubeconfig-path', kubeconfig,
        '--bpf-pin-dir', n.pinDir,
        '--state-dir', n.stateDir,
        '--agent-health-port', '0',
        '--prometheus-serve-addr', '',
        '--ipv4-native-routing-cidr', NATIVE_CIDR,
        '--routing-mode', mode,
      ];
      const child = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CILIUM_TS_LOG_LEVEL: 'info' } });
      n.child = child;
      const collect = (d: Buffer) => (n.output += d.toString());
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
    }
  });

  after(async () => {
    const errors: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no end after 45 s')), 45_000)));
      await Promise.race([fn(), late])
        .catch((err: unknown) => errors.push(`${what}: ${(err as Error).message}`))
        .finally(() => clearTimeout(timer));
    };
    for (const n of nodes) {
      await step(`stop agent ${n.index}`, async () => {
        if (n.child === undefined || n.child.exitCode !== null || n.child.signalCode !== null) return;
        const exited = once(n.child, 'exit');
        n.child.kill('SIGTERM');
        const timer = setTimeout(() => n.child?.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      });
      // A stopped agent removes its health namespace; one that died leaves it.
      await step(`health netns ${n.index}`, () => deleteNetns(healthNetnsName(n.name)));
      await step(`netns ${n.index}`, () => deleteNetns(n.netns));
      await step(`CiliumNode ${n.name}`, () =>
        client.request('DELETE', objectPath(ciliumNodes, n.name)).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        }),
      );
      // eslint-disable-next-line @typescript-eslint/require-await
      await step(`pins ${n.index}`, async () => removePinDir(n.pinDir));
    }
    await step('bridge', () => runIp('delete test bridge', ['link', 'delete', BRIDGE]));
    await step('relay', () => {
      for (const c of relayed) c.destroy();
      return new Promise<void>((resolve) => (relay === undefined ? resolve() : relay.close(() => resolve())));
    });
    await step('temp dir', () => (tmp === undefined ? Promise.resolve() : rm(tmp, { recursive: true, force: true })));
    if (errors.length > 0) throw new Error(`cleanup: ${errors.join('; ')}`);
  });

  function ipcacheRows(n: TestNode): Map<string, Row> {
    const map = BpfMap.openPinned(path.join(n.pinDir, 'cilium_ipcache_v2'));
    try {
      const rows = new Map<string, Row>();
      for (const [k, v] of map.entries()) {
        const { identity, tunnelEndpoint } = decodeRemoteEndpointInfo(v);
        rows.set(decodeIpcacheKey(k), { identity, tunnelEndpoint });
      }
      return rows;
    } finally {
      map.close();
    }
  }

  it('sets both nodes up and connects them, node to health endpoint and endpoint to endpoint', async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    const describe = () => nodes.map((n) => `--- agent ${n.index} (exit ${String(n.child?.exitCode)}):\n${n.output.slice(-3000)}`).join('\n');
    await pollUntil('both CiliumNodes', () => nodes.every((n) => {
      if (n.child?.exitCode !== null) throw new Error(`agent ${n.index} exited\n${describe()}`);
      return logged(n, 'CiliumNode applied');
    }), 60_000);
    for (const n of nodes) {
      await client.request('PATCH', objectPath(ciliumNodes, n.name), { body: { spec: { ipam: { podCIDRs: [n.podCIDR] } } }, contentType: 'application/merge-patch+json' });
    }
    await pollUntil('both health endpoints', () => nodes.every((n) => logged(n, 'health endpoint ready')), 90_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${describe()}`);
    });
    const cn = async (n: TestNode) => client.request<CiliumNode>('GET', objectPath(ciliumNodes, n.name));
    const [nodeA, nodeB] = [await cn(a), await cn(b)];
    const routerA = nodeA.spec.addresses?.find((x) => x.type === 'CiliumInternalIP')?.ip as string;
    const healthA = nodeA.spec.health?.ipv4 as string;
    const healthB = nodeB.spec.health?.ipv4 as string;
    expect(healthA).to.match(/^10\.234\.1\./);
    expect(healthB).to.match(/^10\.234\.2\./);

    // Tunnel: the route to the other node's pods goes through cilium_host, where the programs
    // encapsulate; native: straight to the other node.
    const route = await runIpJson<{ dst: string; dev: string; gateway: string; metrics?: { mtu?: number }[] }>('routes', ['route', 'show', '10.234.2.0/24'], a.netns);
    if (mode === 'tunnel') {
      expect(route[0], JSON.stringify(route)).to.deep.include({ dst: '10.234.2.0/24', dev: 'cilium_host', gateway: routerA });
      expect(route[0]?.metrics?.[0]?.mtu).to.equal(1450);
    } else {
      expect(route[0], JSON.stringify(route)).to.deep.include({ dst: '10.234.2.0/24', dev: 'eth0', gateway: b.ip });
    }

    await pollUntil('the ipcache rows', () => {
      const rows = ipcacheRows(a);
      return rows.get(`${routerA}/32`)?.identity === 1 && rows.get(`${healthB}/32`)?.identity === 4;
    }, 20_000);
    const rows = ipcacheRows(a);
    expect(rows.get(`${a.ip}/32`), 'this node: host').to.deep.equal({ identity: 1, tunnelEndpoint: '0.0.0.0' });
    expect(rows.get(`${routerA}/32`), 'its router IP on cilium_host: host').to.deep.equal({ identity: 1, tunnelEndpoint: '0.0.0.0' });
    expect(rows.get(`${healthA}/32`), 'its health address').to.deep.equal({ identity: 4, tunnelEndpoint: '0.0.0.0' });
    expect(rows.get(`${b.ip}/32`), 'the other node: remote-node').to.deep.equal({ identity: 6, tunnelEndpoint: '0.0.0.0' });
    // The same rows in both modes: native routing just does not use the tunnel endpoint.
    expect(rows.get(`${healthB}/32`), 'the other node\'s health address, behind its node').to.deep.equal({ identity: 4, tunnelEndpoint: b.ip });

    expect(await ping(b.netns, healthA), 'node 2 → node 1\'s health endpoint').to.equal(true);
    expect(await ping(healthNetnsName(a.name), healthB), 'health endpoint 1 → health endpoint 2').to.equal(true);
    expect(await ping(healthNetnsName(b.name), healthA), 'health endpoint 2 → health endpoint 1').to.equal(true);
    const vxlan = await runIpJson<{ stats64?: { rx?: { packets?: number } } }>('vxlan stats', ['-s', 'link', 'show'], a.netns).then((links) => links.find((l) => (l as { ifname?: string }).ifname === 'cilium_vxlan'));
    if (mode === 'tunnel') expect(vxlan?.stats64?.rx?.packets ?? 0, 'the replies came through the tunnel').to.be.greaterThan(0);
    else expect(vxlan, 'no overlay device in native mode').to.equal(undefined);

    const agent = new AgentClient({ socketPath: path.join(a.stateDir, 'cilium.sock') });
    const cfg = await agent.request<{ status: Record<string, unknown> }>('GET', '/config');
    expect(cfg.status, 'what cilium-cni gives pods').to.deep.include({ deviceMTU: 1500, routeMTU: mode === 'tunnel' ? 1450 : 1500, masquerade: true });
  });
});
