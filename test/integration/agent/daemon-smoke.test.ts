// The agent daemon as cmd/cilium-agent.ts runs it, in-process against the test apiserver with a
// temp pin dir and state dir: /healthz and /metrics answer, an endpoint created through
// daemon.endpoints enforces a CNP, and a stop followed by a new daemon on the same pins and state
// keeps that enforcement (the stop leaves endpoints and pins; the start restores them).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { AgentDaemon } from '../../../controllers/agent/daemon.js';
import { loadAgentConfig } from '../../../controllers/config/agent.js';
import { policyMapName } from '../../../datapath/linux/paths.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, type TestLink } from '../../../datapath/linux/testing/fixtures.js';
import { isNotFound, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { ciliumIdentities, ciliumNetworkPolicies, ciliumNodes, collectionPath, objectPath, pods } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { apply } from '../../../controllers/runtime/ssa.js';
import { REALIZED_ANNOTATION } from '../../../controllers/policystatus/realized.js';
import { sharedControlPlane, testNamespace, type ControlPlane } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';
import { httpRequest } from '../../../hack/controlplane/http.js';
import { TCP_SYN, tcpPacket } from '../../../datapath/linux/testing/packets.js';

const log = newLogger('daemon-smoke-test', process.env.SMOKE_LOG ?? 'error');

describe('AgentDaemon (real apiserver, real datapath)', function () {
  this.timeout(120_000);
  const node = `smoke-${process.pid}`;
  let cp: ControlPlane;
  let client: ApiClient;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;
  let pinDir: string | undefined;
  let stateDir: string | undefined;
  let link: TestLink | undefined;
  const running: { daemon: AgentDaemon; done: Promise<void> }[] = [];
  const children: ChildProcess[] = [];

  const agentArgs = () => [
    '--node-name', node,
    '--k8s-kubeconfig-path', cp.kubeconfigPath,
    '--bpf-pin-dir', pinDir as string,
    '--state-dir', stateDir as string,
    '--agent-health-port', '0',
    '--prometheus-serve-addr', '127.0.0.1:0',
    '--identity-change-grace-period', '300ms',
  ];

  async function startDaemon(): Promise<AgentDaemon> {
    const config = loadAgentConfig(agentArgs(), {});
    const daemon = await AgentDaemon.open({ config, logger: log, nodeIP: '198.18.7.1' });
    running.push({ daemon, done: daemon.start() });
    await pollUntil('the health server', () => daemon.healthAddress !== undefined, 10_000);
    return daemon;
  }

  async function stopAll(): Promise<void> {
    for (const r of running.splice(0)) {
      r.daemon.stop();
      await r.done;
    }
  }

  after(async () => {
    const steps: (() => Promise<unknown>)[] = [
      stopAll,
      async () => {
        for (const c of children.splice(0)) {
          if (c.exitCode === null && c.signalCode === null) {
            c.kill('SIGKILL');
            await once(c, 'exit');
          }
        }
      },
      async () => {
        if (ns === undefined) return;
        const list = await client.request<{ items: { metadata: { name: string } }[] }>(
          'GET',
          `${collectionPath(ciliumIdentities)}?labelSelector=${encodeURIComponent(`io.kubernetes.pod.namespace=${ns.name}`)}`,
        );
        for (const ci of list.items) await client.request('DELETE', objectPath(ciliumIdentities, ci.metadata.name)).catch(() => undefined);
      },
      () =>
        client.request('DELETE', objectPath(ciliumNodes, node)).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        }),
      async () => ns?.cleanup(),
      // eslint-disable-next-line @typescript-eslint/require-await
      async () => removePinDir(pinDir),
      async () => removeTestLink(link),
      async () => (stateDir === undefined ? undefined : rm(stateDir, { recursive: true, force: true })),
    ];
    const errors: unknown[] = [];
    for (const s of steps) await s().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw new Error(`cleanup: ${errors.map(String).join('; ')}`);
  });

  before(async () => {
    cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    ns = await testNamespace(cp);
    pinDir = makePinDir();
    stateDir = await mkdtemp(path.join(tmpdir(), 'cilium-ts-daemon-'));
    link = await createTestLink('dm');
  });

  it('serves health and metrics, enforces policy, and keeps enforcing across a restart', async () => {
    const first = await startDaemon();
    const health = `http://127.0.0.1:${first.healthAddress?.port}/healthz`;
    let answer = await httpRequest(health);
    for (const deadline = Date.now() + 20_000; answer.status !== 200 && Date.now() < deadline; answer = await httpRequest(health)) await sleep(50);
    expect(answer.status, `/healthz: ${answer.body}`).to.equal(200);
    expect((JSON.parse(answer.body) as { unsynced: string[] }).unsynced).to.deep.equal([]);

    // The operator's part: a podCIDR on the CiliumNode the agent registered.
    await pollUntil('the CiliumNode registered', () => first.node.resource.store.has(node), 10_000);
    await client.request('PATCH', objectPath(ciliumNodes, node), {
      body: { spec: { ipam: { podCIDRs: ['10.216.0.0/24'] } } },
      contentType: 'application/merge-patch+json',
    });
    await first.node.waitForPodCIDR(AbortSignal.timeout(10_000));
    await client.request('POST', collectionPath(pods, ns?.name), {
      body: { metadata: { name: 'web', namespace: ns?.name, labels: { app: 'web' } }, spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] } },
    });
    const ep = await first.endpoints.create({
      'container-id': 'c0ffee-daemon-smoke',
      'interface-name': link?.ifname,
      'interface-index': link?.ifindex,
      mac: '02:00:00:00:20:02',
      'host-mac': link?.mac,
      'k8s-namespace': ns?.name,
      'k8s-pod-name': 'web',
      state: 'waiting-for-identity',
    });
    // .1 and .2 went to the router and the health endpoint.
    expect(ep.ipv4).to.equal('10.216.0.3');
    await apply(
      client,
      ciliumNetworkPolicies,
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: 'web-ingress', namespace: ns?.name },
        spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
      },
      { fieldManager: 'daemon-smoke-test' },
    );
    const realized = (d: AgentDaemon) => d.datapath.endpointPolicy(ep.id).realized;
    await pollUntil('the policy enforced', () => realized(first)?.entries.some((e) => e.identity === 2 && e.port === 80) === true, 10_000);
    const enforced = realized(first);
    // The node reports the policy's generation as realized, for the operator's Enforced condition.
    const cnpUid = first.resources.cnp.store.get(`${ns?.name}/web-ingress`)?.metadata?.uid as string;
    await pollUntil('the realized report on the CiliumNode', () => {
      const value = first.node.resource.store.get(node)?.metadata.annotations?.[REALIZED_ANNOTATION];
      return value !== undefined && (JSON.parse(value) as Record<string, unknown>)[cnpUid] !== undefined;
    }, 10_000);
    expect(JSON.parse(first.node.resource.store.get(node)?.metadata.annotations?.[REALIZED_ANNOTATION] ?? '{}')).to.deep.equal({ [cnpUid]: { g: 1 } });

    // The loop counts a regeneration once the endpoint manager is done with it (state file, CEP).
    const scrape = () => httpRequest(`http://127.0.0.1:${first.metricsAddress?.port}/metrics`);
    let metrics = await scrape();
    for (const deadline = Date.now() + 5_000; !/^cilium_endpoint_regenerations_total/m.test(metrics.body) && Date.now() < deadline; metrics = await scrape()) await sleep(50);
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.match(/^cilium_endpoint_regenerations_total\{outcome="success"\} [1-9]/m);
    expect(metrics.body).to.match(/^cilium_policy 1$/m);
    expect(metrics.body).to.match(/^cilium_endpoint_state\{endpoint_state="ready"\} 1$/m);
    expect(metrics.body).to.match(/^cilium_policy_implementation_delay_count\{source="k8s"\} 1$/m);

    // The datapath's counters as upstream's: a world peer on the allowed port passes, on another it is denied.
    const fromWorld = (dport: number) => tcpPacket({ src: '198.51.100.77', dst: ep.ipv4, sport: 40_000 + dport, dport, flags: TCP_SYN });
    expect(first.datapath.testRun('to-container', fromWorld(80)).retval).to.equal(0);
    expect(first.datapath.testRun('to-container', fromWorld(81)).retval).to.equal(2);
    metrics = await scrape();
    expect(metrics.body).to.match(/^cilium_drop_count_total\{reason="Policy denied",direction="INGRESS"\} 1$/m);
    expect(metrics.body).to.match(/^cilium_forward_count_total\{direction="INGRESS"\} [1-9]/m);

    await stopAll();
    expect(existsSync(path.join(pinDir as string, policyMapName(ep.id))), 'the policy map pin survives the stop').to.equal(true);

    const second = await startDaemon();
    await pollUntil('endpoint restored', () => second.restoreReport !== undefined, 20_000);
    expect(second.restoreReport?.restored).to.deep.equal([ep.id]);
    expect(second.restoreReport?.pruned).to.deep.equal([]);
    expect(second.datapath.endpointPolicy(ep.id).open).to.equal(true);
    expect(realized(second)).to.deep.equal(enforced);
    // The restored address is claimed back in the pool: the next pod gets another one.
    await second.node.waitForPodCIDR(AbortSignal.timeout(10_000));
    await pollUntil('the address claimed back', () => second.node.used()['10.216.0.3']?.owner === `${ns?.name}/web`, 10_000);

    // A label change moves the endpoint, after the grace period, to another identity, which the policy does not select.
    await client.request('PATCH', objectPath(pods, 'web', ns?.name), { body: { metadata: { labels: { app: 'other' } } }, contentType: 'application/merge-patch+json' });
    expect(realized(second)?.enforcement.ingress, 'still the old identity within the grace period').to.equal(true);
    await pollUntil('enforcement off after the relabel', () => realized(second)?.enforcement.ingress === false, 10_000);
    expect(second.endpoints.get(ep.id)?.identity).to.not.equal(ep.identity);

    await second.endpoints.delete(ep.id);
  });

  it('cmd/cilium-agent serves /healthz and exits 0 on SIGTERM, leaving the pins', async () => {
    // The entry point makes the node's networking (cilium_host, overlay, masquerade) once its node
    // has a podCIDR: without one it stays out of this host's network namespace.
    await client.request('PATCH', objectPath(ciliumNodes, node), { body: { spec: { ipam: { podCIDRs: null } } }, contentType: 'application/merge-patch+json' });
    const entry = path.join(path.dirname(new URL(import.meta.url).pathname), '../../../cmd/cilium-agent.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...agentArgs()], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CILIUM_TS_LOG_LEVEL: 'info' } });
    children.push(child);
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const logs: { message?: string; address?: { port?: number } }[] = [];
    let output = '';
    let parsed = 0;
    // Log lines are JSON; a chunk may end inside one, which the next chunk completes.
    const onData = (d: Buffer) => {
      output += d.toString();
      const end = output.lastIndexOf('\n');
      if (end < parsed) return;
      for (const line of output.slice(parsed, end).split('\n')) {
        try {
          logs.push(JSON.parse(line) as (typeof logs)[number]);
        } catch {
          // not a log line
        }
      }
      parsed = end + 1;
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const logged = (message: string) => logs.find((l) => l.message === message);

    await pollUntil('the health server', () => logged('health and metrics server listening') !== undefined || child.exitCode !== null, 30_000);
    const health = `http://127.0.0.1:${logged('health and metrics server listening')?.address?.port}/healthz`;
    await pollUntil('endpoints restored', () => logged('endpoints restored') !== undefined || child.exitCode !== null, 30_000);
    expect((await httpRequest(health)).status, output.slice(-2000)).to.equal(200);

    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }, output.slice(-2000)).to.deep.equal({ code: 0, signal: null });
    expect(logged('datapath closed; endpoints keep enforcing'), output.slice(-2000)).to.not.equal(undefined);
    expect(logged('node networking set up'), 'no node networking without a podCIDR').to.equal(undefined);
    for (const pin of ['cilium_lxc', 'cilium_ipcache_v2', 'cilium_policy_maps']) expect(existsSync(path.join(pinDir as string, pin)), pin).to.equal(true);
  });
});
