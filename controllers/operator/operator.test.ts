import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { CiliumEndpoint, CiliumIdentity, CiliumNode } from '../../crds/gen/index.js';
import { HEARTBEAT_ANNOTATION } from '../agent/identity/cilium-identity.js';
import { ApiError, type ApiClient } from '../runtime/apiclient.js';
import * as kinds from '../runtime/kinds.js';
import { newLogger } from '../runtime/log.js';
import { Resource } from '../runtime/resource.js';
import { EndpointGC, staleness } from './endpointgc/gc.js';
import { IdentityGC } from './identitygc/gc.js';
import { NodeGC, SKIP_GC_ANNOTATION } from './nodegc/gc.js';
import type { Node, Pod } from './resources.js';

const log = newLogger('operator-unit', 'error');

// Records writes; answers 409 for the names in `conflicts`.
function recordingClient(conflicts = new Set<string>()): ApiClient & { calls: { method: string; path: string; body?: unknown }[] } {
  const calls: { method: string; path: string; body?: unknown }[] = [];
  return {
    calls,
    request<T>(method: string, path: string, opts?: { body?: unknown }): Promise<T> {
      calls.push({ method, path, body: opts?.body });
      const name = path.split('/').pop() ?? '';
      if (conflicts.has(name)) return Promise.reject(new ApiError(`${method} ${path}: HTTP 409 Conflict`, 409, 'Conflict'));
      return Promise.resolve(undefined as T);
    },
    watch: () => Promise.resolve(),
  };
}

function resourceOf<T extends kinds.KubeObject>(type: kinds.ResourceType, objs: T[]): Resource<T> {
  const r = new Resource<T>({ name: type.plural, client: recordingClient(), type, logger: log });
  for (const o of objs) r.store.upsert(o);
  return r;
}

describe('operator duties (pure decisions)', () => {
  it('staleness: owner pod gone (unconfirmed), replaced (uid) or finished; kept when running or owned by another kind', () => {
    const pod = (name: string, uid: string, phase?: string): Pod => ({ metadata: { name, namespace: 'ns', uid }, ...(phase ? { status: { phase } } : {}) });
    const pods = new Map([
      ['ns/web', pod('web', 'u1', 'Running')],
      ['ns/job', pod('job', 'u2', 'Succeeded')],
      ['ns/new', pod('new', 'u3')],
    ]);
    const cep = (name: string, owner?: { kind?: string; name: string; uid: string }): CiliumEndpoint => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumEndpoint',
      metadata: { name, namespace: 'ns', ...(owner ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', ...owner }] } : {}) },
    });
    const get = (k: string) => pods.get(k);
    expect(staleness(cep('web', { name: 'web', uid: 'u1' }), get)).to.equal(undefined);
    expect(staleness(cep('web'), get)).to.equal(undefined);
    expect(staleness(cep('new'), get), 'pending pod').to.equal(undefined);
    expect(staleness(cep('x', { kind: 'StatefulSet', name: 'gone', uid: 'u9' }), get)).to.equal(undefined);
    expect(staleness(cep('web', { name: 'web', uid: 'u0' }), get)).to.deep.equal({ reason: 'pod ns/web is a new pod (uid u1, CEP owner uid u0)', confirmed: true });
    expect(staleness(cep('job'), get)).to.deep.equal({ reason: 'pod ns/job has finished (Succeeded)', confirmed: true });
    expect(staleness(cep('db'), get)).to.deep.equal({ reason: 'pod ns/db does not exist', confirmed: false });
  });

  it('EndpointGC deletes a CEP whose Pod is not found only on the second run', async () => {
    const cep: CiliumEndpoint = { apiVersion: 'cilium.io/v2', kind: 'CiliumEndpoint', metadata: { name: 'db', namespace: 'ns', uid: 'c1' } };
    const client = recordingClient();
    const gc = new EndpointGC({ client, endpoints: resourceOf(kinds.ciliumEndpoints, [cep]), pods: resourceOf<Pod>(kinds.pods, []), intervalMs: 1000, registry: new Registry(), logger: log });
    expect(await gc.runOnce()).to.deep.equal([]);
    expect(await gc.runOnce()).to.deep.equal(['ns/db']);
    expect(client.calls[0]?.body).to.deep.equal({ apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: 'c1' } });
  });

  it('NodeGC marks a CiliumNode without Node, deletes it one interval later, keeps owned, pinned and present ones', async () => {
    const cn = (name: string, metadata: object = {}): CiliumNode => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name, uid: `uid-${name}`, ...metadata }, spec: {} });
    const client = recordingClient();
    let now = 0;
    const gc = new NodeGC({
      client,
      ciliumNodes: resourceOf(kinds.ciliumNodes, [cn('a'), cn('b'), cn('owned', { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'x', uid: 'y' }] }), cn('pinned', { annotations: { [SKIP_GC_ANNOTATION]: 'True' } })]),
      nodes: resourceOf<Node>(kinds.nodes, [{ metadata: { name: 'b' } }]),
      intervalMs: 1000,
      logger: log,
      now: () => now,
    });
    expect(await gc.runOnce()).to.deep.equal([]);
    now = 999;
    expect(await gc.runOnce()).to.deep.equal([]);
    now = 1000;
    expect(await gc.runOnce()).to.deep.equal(['a']);
    expect(client.calls).to.deep.equal([
      { method: 'DELETE', path: '/apis/cilium.io/v2/ciliumnodes/a', body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: 'uid-a' } } },
    ]);
  });

  it('IdentityGC marks unused, unmarks used, deletes expired marks with their resourceVersion, counts refused writes', async () => {
    const now = new Date('2026-01-01T00:10:00Z');
    const ci = (name: string, mark?: string): CiliumIdentity => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumIdentity',
      metadata: { name, resourceVersion: `rv-${name}`, ...(mark ? { annotations: { [HEARTBEAT_ANNOTATION]: mark } } : {}) },
      'security-labels': {},
    });
    const ep = (id: number): CiliumEndpoint => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumEndpoint', metadata: { name: `ep${id}`, namespace: 'ns' }, status: { identity: { id } } });
    const client = recordingClient(new Set(['105']));
    const registry = new Registry();
    const gc = new IdentityGC({
      client,
      identities: resourceOf(kinds.ciliumIdentities, [
        ci('100'), // unused, unmarked → marked
        ci('101', '2026-01-01T00:09:30Z'), // unused, marked 30 s ago → kept
        ci('102', '2026-01-01T00:00:00Z'), // unused, marked 10 min ago → deleted
        ci('103', '2026-01-01T00:00:00Z'), // used again → unmarked
        ci('104'), // used → untouched
        ci('105', '2026-01-01T00:00:00Z'), // changed since read → 409, kept
        ci('not-a-number'),
      ]),
      endpoints: resourceOf(kinds.ciliumEndpoints, [ep(103), ep(104)]),
      intervalMs: 60_000,
      heartbeatTimeoutMs: 60_000,
      rateLimit: 100,
      rateIntervalMs: 60_000,
      registry,
      logger: log,
      now: () => now,
    });
    expect(await gc.runOnce()).to.deep.equal({ alive: 4, marked: 1, unmarked: 1, deleted: 1, conflicts: 1 });
    const writes = client.calls.map((c) => `${c.method} ${c.path.split('/').pop() ?? ''} ${JSON.stringify(c.body)}`);
    expect(writes).to.deep.equal([
      `PATCH 100 {"metadata":{"resourceVersion":"rv-100","annotations":{"${HEARTBEAT_ANNOTATION}":"2026-01-01T00:10:00.000Z"}}}`,
      'DELETE 102 {"apiVersion":"v1","kind":"DeleteOptions","preconditions":{"resourceVersion":"rv-102"}}',
      `PATCH 103 {"metadata":{"resourceVersion":"rv-103","annotations":{"${HEARTBEAT_ANNOTATION}":null}}}`,
      'DELETE 105 {"apiVersion":"v1","kind":"DeleteOptions","preconditions":{"resourceVersion":"rv-105"}}',
    ]);
    const text = await registry.metrics();
    expect(text).to.include('cilium_operator_identity_gc_entries{status="deleted",identity_type="crd"} 1');
    expect(text).to.include('cilium_operator_identity_gc_runs{outcome="success",identity_type="crd"} 1');
  });
});
