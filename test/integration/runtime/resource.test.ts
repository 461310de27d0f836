// Resource<T> against the real apiserver: list, watch, indexes, validation, and recovery from a
// broken stream, a 410 Gone and a silent stream.
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { expect } from 'chai';
import { pollUntil } from '../../envtest/poll.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { ApiError, newApiClient, type ApiClient, type WatchEvent } from '../../../controllers/runtime/apiclient.js';
import { collectionPath, configMaps, objectKey, objectPath } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { Resource, type ResourceOptions } from '../../../controllers/runtime/resource.js';

type ConfigMap = V1ConfigMap & { metadata: NonNullable<V1ConfigMap['metadata']> };

/**
 * The real client with a hand on its watches: `cut()` breaks the open stream the way a reset
 * connection does, `hold()` keeps the next watch from opening until `release()`, and
 * `expireNext()` answers the next watches as the apiserver answers one whose resourceVersion it no
 * longer has. (A fresh test apiserver's watch cache reaches back to etcd's
 * first revision, so no resourceVersion it is asked for is too old.)
 */
class InterruptibleClient implements ApiClient {
  watches = 0;
  private current?: AbortController;
  private broken = false;
  private expiring = 0;
  private gate?: { opened: Promise<void>; open(): void };

  constructor(private readonly inner: ApiClient) {}

  request<T>(method: string, apiPath: string, opts?: Parameters<ApiClient['request']>[2]): Promise<T> {
    return this.inner.request<T>(method, apiPath, opts);
  }

  async watch(apiPath: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    this.watches++;
    await this.gate?.opened;
    if (this.expiring > 0) {
      this.expiring--;
      const rv = new URL(apiPath, 'http://x').searchParams.get('resourceVersion');
      onEvent({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${rv}` } });
      return;
    }
    const own = new AbortController();
    this.current = own;
    await this.inner.watch(apiPath, onEvent, AbortSignal.any([signal, own.signal]));
    if (this.broken && own.signal.aborted && !signal.aborted) {
      this.broken = false;
      throw new ApiError(`watch ${apiPath}: read ECONNRESET`, 0);
    }
  }

  cut(): void {
    this.broken = true;
    this.current?.abort();
  }

  /** Answers the next `count` watches with 410 Gone. */
  expireNext(count = 1): void {
    this.expiring = count;
  }

  hold(): void {
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.gate = { opened, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = undefined;
  }
}

describe('Resource (real apiserver)', function () {
  this.timeout(60_000);
  let client: ApiClient;
  let ns: { name: string; cleanup(): Promise<void> };
  const resources: Resource<ConfigMap>[] = [];
  const log = newLogger('resource-test', 'error');

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    ns = await testNamespace(cp);
  });
  after(async () => {
    await Promise.all(resources.map((r) => r.stop()));
    await ns?.cleanup();
  });

  const configMap = (name: string, labels: Record<string, string> = {}, data: Record<string, string> = {}): ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: ns.name, labels },
    data,
  });
  const create = (cm: ConfigMap) => client.request<ConfigMap>('POST', collectionPath(configMaps, ns.name), { body: cm });
  const remove = (name: string) => client.request('DELETE', objectPath(configMaps, name, ns.name));
  const update = (cm: ConfigMap) => client.request<ConfigMap>('PUT', objectPath(configMaps, cm.metadata.name ?? '', ns.name), { body: cm });

  function resource(name: string, extra: Partial<ResourceOptions<ConfigMap>> = {}): Resource<ConfigMap> {
    const r = new Resource<ConfigMap>({ name, client, type: configMaps, namespace: ns.name, logger: log, backoff: { initialMs: 50, maxMs: 500 }, ...extra });
    resources.push(r);
    return r;
  }

  function recorder(r: Resource<ConfigMap>) {
    const events: string[] = [];
    r.on({
      add: (o) => events.push(`add ${o.metadata.name}`),
      update: (o, n) => events.push(`update ${o.metadata.name} ${o.data?.v ?? ''}->${n.data?.v ?? ''}`),
      delete: (o) => events.push(`delete ${o.metadata.name}`),
    });
    return events;
  }

  async function started(r: Resource<ConfigMap>): Promise<Resource<ConfigMap>> {
    r.start();
    await r.waitForSync(AbortSignal.timeout(10_000));
    return r;
  }

  /** A synced resource of the objects labelled `label` whose watch runs through an InterruptibleClient. */
  async function interruptible(label: string, extra: Partial<ResourceOptions<ConfigMap>> = {}) {
    const wrapped = new InterruptibleClient(client);
    const r = resource(label, { client: wrapped, labelSelector: label, ...extra });
    const events = recorder(r);
    await started(r);
    await pollUntil('watch open', () => wrapped.watches === 1, 5000);
    return { wrapped, r, events };
  }

  it('lists, then delivers adds, updates and deletes in order with the store already current', async () => {
    await create(configMap('pre-a', { app: 'web' }));
    await create(configMap('pre-b', { app: 'db' }));
    const r = resource('order', { labelSelector: 'app' });
    const events = recorder(r);
    const storeAtEvent: boolean[] = [];
    r.on({ add: (o) => storeAtEvent.push(r.store.has(objectKey(o))), delete: (o) => storeAtEvent.push(!r.store.has(objectKey(o))) });
    expect(r.health()).to.include({ synced: false, restarts: 0 });
    await started(r);
    expect(events.sort()).to.deep.equal(['add pre-a', 'add pre-b']);
    events.length = 0;
    const c = await create(configMap('c', { app: 'web' }, { v: '1' }));
    await update({ ...c, data: { v: '2' } });
    await create(configMap('unlabelled'));
    await remove('c');
    await pollUntil('delete of c seen', () => events.includes('delete c'), 10_000);
    expect(events).to.deep.equal(['add c', 'update c 1->2', 'delete c']);
    expect(storeAtEvent.every(Boolean)).to.equal(true);
    expect(r.store.keys().sort()).to.deep.equal([`${ns.name}/pre-a`, `${ns.name}/pre-b`]);
    expect(r.health()).to.include({ synced: true, connected: true, restarts: 0, relists: 0 });
  });

  it('keeps namespace, label and custom indexes current', async () => {
    const r = resource('indexes');
    r.store.addIndex('tier', (o) => (o.data?.tier ? [o.data.tier] : []));
    await started(r);
    await create(configMap('idx-1', { role: 'x' }, { tier: 'gold' }));
    const second = await create(configMap('idx-2', { role: 'x' }, { tier: 'gold' }));
    await pollUntil('both indexed', () => r.store.byIndex('tier', 'gold').length === 2, 10_000);
    expect(r.store.byLabel('role', 'x').map((o) => o.metadata.name).sort()).to.deep.equal(['idx-1', 'idx-2']);
    expect(r.store.byNamespace(ns.name).length).to.equal(r.store.size);
    await update({ ...second, data: { tier: 'silver' } });
    await pollUntil('idx-2 moved to silver', () => r.store.byIndex('tier', 'silver').length === 1, 10_000);
    expect(r.store.byIndex('tier', 'gold').map((o) => o.metadata.name)).to.deep.equal(['idx-1']);
  });

  it('reconnects after a broken stream and misses nothing changed meanwhile', async () => {
    const { wrapped, r, events } = await interruptible('cut');
    wrapped.cut();
    await create(configMap('during-cut', { cut: 'yes' }));
    await pollUntil('object created during the cut seen', () => events.includes('add during-cut'), 10_000);
    const h = r.health();
    expect(h).to.include({ restarts: 1, relists: 0, connected: true });
    expect(h.lastError).to.match(/ECONNRESET/);
    expect(wrapped.watches).to.equal(2);
  });

  it('relists on 410 Gone: deletes what vanished, adds what appeared', async () => {
    await create(configMap('gone-old', { gone: 'yes' }));
    const { wrapped, r, events } = await interruptible('gone');
    // Changes made while the stream is down, then a reconnect that finds its resourceVersion expired.
    wrapped.hold();
    wrapped.expireNext();
    wrapped.cut();
    await pollUntil('reconnect waiting', () => wrapped.watches === 2, 5000);
    await remove('gone-old');
    await create(configMap('gone-new', { gone: 'yes' }));
    wrapped.release();
    await pollUntil('relist done', () => r.health().relists === 1 && r.store.has(`${ns.name}/gone-new`), 10_000);
    expect(r.store.has(`${ns.name}/gone-old`)).to.equal(false);
    expect(events).to.include.members(['add gone-old', 'delete gone-old', 'add gone-new']);
    expect(r.health().lastError).to.match(/410/);
  });

  it('backs off when every watch after a relist is 410 again', async () => {
    const { wrapped, r } = await interruptible('always-gone');
    wrapped.expireNext(Number.MAX_SAFE_INTEGER);
    wrapped.cut();
    await sleep(1000);
    const relists = r.health().relists;
    wrapped.expireNext(0);
    // Backoff 50 ms doubling to 500 ms allows about five in a second; without it, hundreds.
    expect(relists).to.be.within(2, 12);
    await pollUntil('watching again', () => r.health().relists === relists && r.health().connected, 5000);
  });

  it('reconnects when the watch stays silent longer than the inactivity timeout', async () => {
    const r = resource('silent', { labelSelector: 'nothing-has-this', inactivityTimeoutMs: 300 });
    await started(r);
    await pollUntil('two watchdog restarts', () => r.health().restarts >= 2, 10_000);
    expect(r.health().lastError).to.match(/silent for 300 ms/);
    expect(r.synced).to.equal(true);
  });

  it('holds a once-valid object at its last valid version through a relist that brings it refused', async () => {
    const refused: string[] = [];
    const held = await create(configMap('held', { relisted: 'yes' }, { port: '80' }));
    const { wrapped, r, events } = await interruptible('relisted', {
      validate: (obj) => ((obj as ConfigMap).data?.port === 'x' ? { ok: false, errors: [{ path: 'data.port', message: 'must be digits' }] } : { ok: true, value: obj as ConfigMap }),
      onInvalid: (obj) => refused.push(obj.metadata?.name ?? ''),
    });
    wrapped.hold();
    wrapped.expireNext();
    wrapped.cut();
    await pollUntil('reconnect waiting', () => wrapped.watches === 2, 5000);
    await update({ ...held, data: { port: 'x' } });
    wrapped.release();
    await pollUntil('relist refused it', () => r.health().relists === 1 && refused.length === 1, 10_000);
    expect(r.store.get(`${ns.name}/held`)?.data?.port).to.equal('80');
    expect(r.health().heldInvalid).to.equal(1);
    expect(events, 'no delete').to.deep.equal(['add held']);
  });

  it('keeps a never-valid object out, and holds a once-valid one at its last valid version while it is refused', async () => {
    const refused: string[] = [];
    const r = resource('validated', {
      labelSelector: 'checked',
      validate: (obj) => {
        const cm = obj as ConfigMap;
        return cm.data?.port !== undefined && !/^\d+$/.test(cm.data.port)
          ? { ok: false, errors: [{ path: 'data.port', message: 'must be digits' }] }
          : { ok: true, value: cm };
      },
      onInvalid: (obj, errors) => refused.push(`${obj.metadata?.name} ${(obj as ConfigMap).data?.port}: ${errors.map((e) => `${e.path} ${e.message}`).join()}`),
    });
    const events: string[] = [];
    r.on({
      add: (o) => events.push(`add ${o.metadata.name} ${o.data?.port}`),
      update: (o, n) => events.push(`update ${o.metadata.name} ${o.data?.port}->${n.data?.port}`),
      delete: (o) => events.push(`delete ${o.metadata.name} ${o.data?.port}`),
    });
    await started(r);
    const good = await create(configMap('v-good', { checked: 'y' }, { port: '80' }));
    const bad = await create(configMap('v-bad', { checked: 'y' }, { port: 'http' }));
    await pollUntil('v-bad refused', () => refused.length === 1, 10_000);
    expect(refused).to.deep.equal(['v-bad http: data.port must be digits']);
    expect(r.store.has(`${ns.name}/v-bad`), 'never valid: not stored').to.equal(false);
    expect(r.health().heldInvalid).to.equal(0);

    // Valid before, refused now: the last valid version stays, with no event, and every refused
    // version is reported until a valid one comes.
    const x = await update({ ...good, data: { port: 'x' } });
    await pollUntil('v-good x refused', () => refused.length === 2, 10_000);
    const y = await update({ ...x, data: { port: 'y' } });
    await pollUntil('v-good y refused', () => refused.length === 3, 10_000);
    expect(refused.slice(1)).to.deep.equal(['v-good x: data.port must be digits', 'v-good y: data.port must be digits']);
    expect(r.store.get(`${ns.name}/v-good`)?.data?.port, 'last valid version kept').to.equal('80');
    expect(r.health().heldInvalid).to.equal(1);
    const fixed = await update({ ...y, data: { port: '81' } });
    await pollUntil('v-good valid again', () => r.store.get(`${ns.name}/v-good`)?.data?.port === '81', 10_000);
    expect(r.health().heldInvalid).to.equal(0);

    // Held while refused, then deleted: the delete is delivered with the last valid version.
    await update({ ...fixed, data: { port: 'z' } });
    await pollUntil('v-good z refused', () => refused.length === 4, 10_000);
    expect(r.health().heldInvalid).to.equal(1);
    await remove('v-good');
    await pollUntil('v-good deleted', () => !r.store.has(`${ns.name}/v-good`), 10_000);
    expect(r.health().heldInvalid).to.equal(0);

    await update({ ...bad, data: { port: '90' } });
    await pollUntil('v-bad valid', () => r.store.has(`${ns.name}/v-bad`), 10_000);
    expect(events).to.deep.equal(['add v-good 80', 'update v-good 80->81', 'delete v-good 81', 'add v-bad 90']);
  });

  it('waitForSync rejects when its signal aborts first', async () => {
    const r = resource('never-started');
    const err = await r.waitForSync(AbortSignal.timeout(20)).catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.match(/never-started: stopped waiting for sync/);
    await sleep(0);
  });
});
