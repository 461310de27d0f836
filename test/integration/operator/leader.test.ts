// Two cilium-operators on one Lease (kube-system/cilium-operator-resource-lock, lease 2 s): the
// real entry point (cmd/cilium-operator.ts) as a process and an in-process operator. Only the
// leader acts; SIGKILL of the leader hands over within the lease time; SIGTERM releases the
// Lease and exits 0. /healthz and /metrics answer on the configured addresses.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { ciliumNodes, leases, objectPath } from '../../../controllers/runtime/kinds.js';
import { operatorLeaderElection, type LeaseSpec } from '../../../controllers/runtime/leaderelection.js';
import { seriesValue } from '../../../controllers/runtime/metrics.js';
import { pollUntil } from '../../envtest/poll.js';
import { create, httpGet, operatorTestContext, SHORT_LEASE_ARGS, testId, waitForObject } from './harness.js';

const entryPoint = fileURLToPath(new URL('../../../cmd/cilium-operator.ts', import.meta.url));

interface Child {
  proc: ChildProcess;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  logs: Record<string, unknown>[];
  stderr: () => string;
}

describe('cilium-operator leader election (real apiserver, two operators)', function () {
  this.timeout(60_000);
  const t = operatorTestContext();
  const children: Child[] = [];
  beforeEach(() =>
    t.onCleanup(async () => {
      for (const c of children.splice(0)) {
        if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
        await c.exited;
      }
    }),
  );

  function spawnOperator(): Child {
    const args = [
      ...SHORT_LEASE_ARGS,
      `--k8s-kubeconfig-path=${t.kubeconfigPath}`,
      '--operator-api-serve-addr=127.0.0.1:0',
      '--operator-prometheus-serve-addr=127.0.0.1:0',
      '--cluster-pool-ipv4-cidr=10.200.0.0/16',
      // Nothing here has Node objects: keep the CiliumNode GC out of the way.
      '--nodes-gc-interval=1h',
    ];
    const proc = spawn(process.execPath, ['--import', 'tsx', entryPoint, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CILIUM_TS_LOG_LEVEL: 'info' } });
    const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const logs: Record<string, unknown>[] = [];
    let text = '';
    let pending = '';
    const onData = (d: Buffer) => {
      text += d.toString();
      pending += d.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    const child = { proc, exited, logs, stderr: () => text.slice(-3000) };
    children.push(child);
    return child;
  }
  const logged = (c: Child, message: string) => c.logs.find((l) => l.message === message);
  const portOf = (c: Child, message: string) => ((logged(c, message)?.address as { port?: number } | undefined)?.port ?? 0);
  const lease = () => t.client.request<{ spec: LeaseSpec }>('GET', objectPath(leases, operatorLeaderElection.name, operatorLeaderElection.namespace));
  const addNode = async (name: string) => {
    t.track(ciliumNodes, name);
    await create<CiliumNode>(t.client, ciliumNodes, { metadata: { name }, spec: {} });
  };
  const cidrOf = async (name: string) =>
    (await waitForObject<CiliumNode>(t.client, ciliumNodes, name, `podCIDR of ${name}`, (n) => (n?.spec.ipam?.podCIDRs ?? []).length === 1))?.spec.ipam?.podCIDRs?.[0];

  it('the process serves /healthz and /metrics, and on SIGTERM releases the Lease and exits 0', async () => {
    const a = spawnOperator();
    await pollUntil('operator process leads', () => logged(a, 'started leading') !== undefined || a.proc.exitCode !== null, 20_000).catch(() => undefined);
    expect(logged(a, 'started leading'), a.stderr()).not.to.equal(undefined);
    await pollUntil('metrics server up', () => logged(a, 'metrics server listening') !== undefined, 5000);
    // 503 until every watch has its first list, then 200.
    let health = await httpGet(portOf(a, 'health and metrics server listening'), '/healthz');
    const deadline = Date.now() + 10_000;
    while (health.status !== 200 && Date.now() < deadline) {
      expect(health.status).to.equal(503);
      await new Promise((r) => setTimeout(r, 100));
      health = await httpGet(portOf(a, 'health and metrics server listening'), '/healthz');
    }
    expect(health.status, health.body).to.equal(200);
    await pollUntil('first identity GC run', () => logged(a, 'identity GC run done') !== undefined, 10_000);
    const metrics = await httpGet(portOf(a, 'metrics server listening'), '/metrics');
    expect(metrics.body).to.match(/cilium_operator_identity_gc_runs\{outcome="success",identity_type="crd"\} [1-9]/);
    expect(metrics.body).to.include('workqueue_depth{name="ipam"}');
    a.proc.kill('SIGTERM');
    const [code, signal] = await a.exited;
    expect({ code, signal }, a.stderr()).to.deep.equal({ code: 0, signal: null });
    expect((await lease()).spec.holderIdentity).to.equal('');
  });

  it('only the leader acts; after SIGKILL of the leader the other takes over within the lease time', async () => {
    const id = testId();
    const a = spawnOperator();
    await pollUntil('operator process leads', () => logged(a, 'started leading') !== undefined || a.proc.exitCode !== null, 20_000);
    expect(logged(a, 'started leading'), a.stderr()).not.to.equal(undefined);
    const b = t.operator({ identity: 'in-process', leaseNamespace: operatorLeaderElection.namespace });
    await pollUntil('b sees a synced', () => b.manager.health().ok, 10_000);
    await addNode(`le-${id}-1`);
    const first = await cidrOf(`le-${id}-1`);
    // Longer than a lease: the leader renews, b stays out and reconciles nothing.
    await new Promise((r) => setTimeout(r, 2500));
    expect(b.manager.isLeader).to.equal(false);
    expect(await seriesValue(b.registry, 'controller_runtime_reconcile_total', { controller: 'ipam' })).to.equal(undefined);
    expect((await lease()).spec.holderIdentity).to.not.equal('in-process');

    const t0 = Date.now();
    a.proc.kill('SIGKILL');
    await a.exited;
    await pollUntil('b leads', () => b.manager.isLeader, 6000);
    const takeover = Date.now() - t0;
    // The 2 s lease had to run out (judged by b's clock from the last renewal it saw), plus a retry.
    expect(takeover).to.be.within(1000, 4500);
    await addNode(`le-${id}-2`);
    const second = await cidrOf(`le-${id}-2`);
    expect(second).to.not.equal(first);
    expect(await seriesValue(b.registry, 'controller_runtime_reconcile_total', { controller: 'ipam', result: 'success' })).to.be.above(0);
    expect((await lease()).spec.holderIdentity).to.equal('in-process');
  });
});
