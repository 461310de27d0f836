// The Manager on the real apiserver: a leader-elected controller reconciles, /healthz and /metrics
// answer, SIGTERM drains and releases the Lease, a lost Lease stops the manager with an error.
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { pollUntil } from '../../envtest/poll.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { ApiError, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { Controller } from '../../../controllers/runtime/controller.js';
import { collectionPath, configMaps, leases, objectPath } from '../../../controllers/runtime/kinds.js';
import type { LeaseSpec } from '../../../controllers/runtime/leaderelection.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { Manager, type HealthReport } from '../../../controllers/runtime/manager.js';
import { Resource } from '../../../controllers/runtime/resource.js';
import { httpRequest } from '../../../hack/controlplane/http.js';

type ConfigMap = V1ConfigMap & { metadata: NonNullable<V1ConfigMap['metadata']> };

const get = (port: number, path: string) => httpRequest(`http://127.0.0.1:${port}${path}`);

describe('Manager (real apiserver)', function () {
  this.timeout(60_000);
  let client: ApiClient;
  let ns: { name: string; cleanup(): Promise<void> };
  const log = newLogger('manager-test', 'error');
  const stops: (() => Promise<unknown>)[] = [];

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    ns = await testNamespace(cp);
  });
  after(async () => {
    await Promise.all(stops.map((s) => s()));
    await ns?.cleanup();
  });

  function build(name: string, opts: { client?: ApiClient; reconciled?: string[] } = {}) {
    const c = opts.client ?? client;
    const registry = new Registry();
    const resource = new Resource<ConfigMap>({ name: `${name}-configmaps`, client: c, type: configMaps, namespace: ns.name, logger: log });
    const reconciled = opts.reconciled ?? [];
    const controller = new Controller({
      name: `${name}-ctrl`,
      registry,
      logger: log,
      reconciler: {
        reconcile: (key) => {
          reconciled.push(key);
          return Promise.resolve();
        },
      },
    }).watch(resource);
    const manager = new Manager({
      name,
      registry,
      logger: log,
      health: { port: 0 },
      shutdownTimeoutMs: 5000,
      leaderElection: { client: c, namespace: ns.name, name: `${name}-lock`, identity: `${name}-1`, leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 250 },
    })
      .addResource(resource)
      .addController(controller);
    return { manager, resource, reconciled };
  }

  it('runs a leader-elected controller, serves health and metrics, and on SIGTERM drains and releases the Lease', async () => {
    const { manager, reconciled } = build('op');
    expect(manager.health()).to.deep.include({ ok: false, unsynced: ['op-configmaps'] });
    // A stand-in for `process`: a real SIGTERM would end the test run; the next test sends one to a
    // manager process of its own.
    const signals = new EventEmitter();
    const removeHandlers = manager.handleSignals(signals);
    const running = manager.start();
    stops.push(() => (manager.stop(), running.catch(() => undefined)));
    await pollUntil('leading', () => manager.isLeader, 5000);
    await client.request('POST', collectionPath(configMaps, ns.name), { body: { metadata: { name: 'hello' } } });
    await pollUntil('hello reconciled', () => reconciled.includes(`${ns.name}/hello`), 10_000);

    const port = manager.healthAddress?.port ?? 0;
    const health = await get(port, '/healthz');
    expect(health.status).to.equal(200);
    const report = JSON.parse(health.body) as HealthReport;
    expect(report.unsynced).to.deep.equal([]);
    expect(report.resources[0]).to.include({ name: 'op-configmaps', synced: true, connected: true });
    const metrics = await get(port, '/metrics');
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.match(/controller_runtime_reconcile_total\{controller="op-ctrl",result="success"\} [1-9]/);
    expect(metrics.body).to.include('workqueue_depth{name="op-ctrl"} 0');
    expect(metrics.body).to.include('workqueue_adds_total{name="op-ctrl"}');

    signals.emit('SIGTERM', 'SIGTERM');
    await running;
    removeHandlers();
    const lease = await client.request<{ spec: LeaseSpec }>('GET', objectPath(leases, 'op-lock', ns.name));
    expect(lease.spec.holderIdentity, 'released for a successor').to.equal('');
    const closed = await get(port, '/healthz').catch((e: Error) => e);
    expect(closed).to.be.instanceOf(Error);
  });

  it('a real SIGTERM to a manager process stops its parts, releases the Lease and exits 0', async () => {
    const cp = await sharedControlPlane();
    const script = fileURLToPath(new URL('./testdata/sigterm-manager.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, cp.kubeconfigPath, ns.name, 'sigterm-lock'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    stops.push(() => (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), exited));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await pollUntil('child leads', () => stdout.includes('LEADING') || child.exitCode !== null, 20_000);
    expect(stdout, stderr).to.include('LEADING');
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }, stderr).to.deep.equal({ code: 0, signal: null });
    expect(stdout.split('\n').filter(Boolean)).to.deep.equal(['LEADING', 'DRAINED', 'STOPPED']);
    const lease = await client.request<{ spec: LeaseSpec }>('GET', objectPath(leases, 'sigterm-lock', ns.name));
    expect(lease.spec.holderIdentity).to.equal('');
  });

  it('reports an unsynced resource on /healthz with 503', async () => {
    const broken: ApiClient = {
      request: (method, path) => Promise.reject(new ApiError(`${method} ${path}: HTTP 403 Forbidden`, 403)),
      watch: () => Promise.reject(new ApiError('watch: HTTP 403 Forbidden', 403)),
    };
    const registry = new Registry();
    const resource = new Resource<ConfigMap>({ name: 'forbidden', client: broken, type: configMaps, logger: log, backoff: { initialMs: 20, maxMs: 100 } });
    const manager = new Manager({ name: 'agent', registry, logger: log, health: { port: 0 } }).addResource(resource);
    const running = manager.start();
    stops.push(() => (manager.stop(), running.catch(() => undefined)));
    await pollUntil('health server up', () => manager.healthAddress !== undefined, 5000);
    await pollUntil('a few restarts', () => resource.health().restarts >= 2, 5000);
    const res = await get(manager.healthAddress?.port ?? 0, '/healthz');
    expect(res.status).to.equal(503);
    const report = JSON.parse(res.body) as HealthReport;
    expect(report.unsynced).to.deep.equal(['forbidden']);
    expect(report.resources[0]?.lastError).to.match(/403/);
    manager.stop();
    await running;
  });

  it('stops with an error when the Lease cannot be renewed', async () => {
    let failing = false;
    const flaky: ApiClient = {
      request: (method, path, opts) =>
        failing && path.includes('/leases/') ? Promise.reject(new ApiError(`${method} ${path}: connect ECONNREFUSED`, 0)) : client.request(method, path, opts),
      watch: (path, onEvent, signal) => client.watch(path, onEvent, signal),
    };
    const { manager } = build('lost', { client: flaky });
    const running = manager.start();
    stops.push(() => (manager.stop(), running.catch(() => undefined)));
    await pollUntil('leading', () => manager.isLeader, 5000);
    failing = true;
    const err = await running.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/leadership of .*lost-lock lost/);
  });
});
