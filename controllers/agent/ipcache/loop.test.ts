// The ipcache loop against a recording datapath and an in-memory API: which sources it syncs and
// when, validation of what it reads, and a failing source.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { CiliumEndpoint, CiliumNode } from '../../../crds/gen/index.js';
import type { IPCacheEntry, IPCacheSource, SyncResult } from '../../../datapath/types.js';
import { EventRecorder } from '../../runtime/events.js';
import { newLogger } from '../../runtime/log.js';
import { pollUntil } from '../../../test/envtest/poll.js';
import { loopsUnderTest, MemoryApi } from '../testing.js';
import { IPCacheLoop } from './loop.js';
import { ciliumEndpointResource, ciliumNodeResource, InvalidObjectReporter, REASON_INVALID } from './resources.js';

const log = newLogger('ipcache-loop-test', 'error');

class RecordingDatapath {
  readonly calls: [IPCacheSource, IPCacheEntry[]][] = [];
  failing?: IPCacheSource;
  syncIPCache(source: IPCacheSource, entries: readonly IPCacheEntry[]): Promise<SyncResult> {
    this.calls.push([source, [...entries]]);
    if (source === this.failing) return Promise.reject(new Error('map full'));
    return Promise.resolve({ added: entries.length, updated: 0, removed: 0 });
  }
}

const ownNode: CiliumNode = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNode',
  metadata: { name: 'n1', resourceVersion: '1', uid: 'u-n1' },
  spec: { addresses: [{ type: 'InternalIP', ip: '192.168.0.1' }] },
};

function cep(name: string, ipv4: string, id: unknown, rv = '1'): CiliumEndpoint {
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumEndpoint',
    metadata: { name, namespace: 'ns', resourceVersion: rv, uid: `u-${name}` },
    status: { identity: { id: id as number }, networking: { addressing: [{ ipv4 }], node: 'n2' } },
  };
}

describe('IPCacheLoop', function () {
  const loops = loopsUnderTest();

  function startLoop(api: MemoryApi, dp: RecordingDatapath) {
    const events = new EventRecorder({ client: api, component: 'cilium-agent', logger: log });
    const reporter = new InvalidObjectReporter(events);
    const nodes = ciliumNodeResource('nodes', { client: api, logger: log }, reporter);
    const endpoints = ciliumEndpointResource('endpoints', { client: api, logger: log }, reporter);
    const registry = new Registry();
    const loop = new IPCacheLoop({ nodeName: 'n1', datapath: dp, nodes, endpoints, reporter, registry, logger: log });
    nodes.start();
    endpoints.start();
    loops.own(nodes); loops.own(endpoints);
    loops.run(loop.start(loops.signal));
    return { loop, registry };
  }

  it('syncs each of its sources once, never cidr, then only the source whose rows changed', async function () {
    const api = new MemoryApi({ ciliumnodes: [ownNode], ciliumendpoints: [cep('a', '10.0.2.10', 1000)] });
    const dp = new RecordingDatapath();
    const { loop, registry } = startLoop(api, dp);
    await pollUntil('first sync of its three sources', () => dp.calls.length === 3, 5000);
    // `cidr` has one writer, the policy loop: a recompute here must never overwrite its rows.
    expect(dp.calls.map(([s]) => s)).to.deep.equal(['local', 'node', 'endpoint']);
    expect(dp.calls[0]?.[1]).to.deep.equal([{ prefix: '192.168.0.1/32', identity: 1 }]);
    expect(dp.calls[2]?.[1]).to.deep.equal([{ prefix: '10.0.2.10/32', identity: 1000 }]);

    await api.push('ciliumendpoints', 'MODIFIED', cep('a', '10.0.2.10', 2000, '2'));
    await pollUntil('endpoint source resynced', () => dp.calls.length === 4, 5000);
    expect(dp.calls[3]).to.deep.equal(['endpoint', [{ prefix: '10.0.2.10/32', identity: 2000 }]]);

    loop.refresh();
    await new Promise((r) => setTimeout(r, 100));
    expect(dp.calls, 'an unchanged recompute writes nothing').to.have.length(4);
    expect(dp.calls.some(([s]) => s === 'cidr')).to.equal(false);
    const metrics = await registry.getSingleMetricAsString('cilium_ipcache_events_total');
    expect(metrics).to.include('cilium_ipcache_events_total{type="upsert"} 3');
  });

  it('ignores a malformed object with one Warning event naming the field and keeps syncing', async function () {
    const api = new MemoryApi({ ciliumnodes: [ownNode], ciliumendpoints: [cep('ok', '10.0.2.10', 1000), cep('typed', '10.0.2.11', 'x'), cep('addr', 'banana', 1001)] });
    const dp = new RecordingDatapath();
    const { loop } = startLoop(api, dp);
    await pollUntil('first sync', () => dp.calls.length === 3, 5000);
    expect(dp.calls[2]?.[1]).to.deep.equal([{ prefix: '10.0.2.10/32', identity: 1000 }]);
    loop.refresh();
    await pollUntil('two events', () => api.posted.length >= 2, 5000);
    await new Promise((r) => setTimeout(r, 100));
    const warnings = api.posted.map((e) => [(e.involvedObject as { name: string }).name, e.type, e.reason, e.message]);
    expect(warnings).to.have.length(2, 'one event per object version, not per recompute');
    expect(warnings).to.deep.include.members([
      ['typed', 'Warning', REASON_INVALID, 'CiliumEndpoint ignored: status.identity.id: Invalid value: "x": must be of type integer'],
      ['addr', 'Warning', REASON_INVALID, 'CiliumEndpoint ignored: status.networking.addressing[0].ipv4: "banana" is not an IPv4 address'],
    ]);
  });

  it('keeps the row of an endpoint whose new version is malformed, so the pod does not fall to world', async function () {
    const api = new MemoryApi({ ciliumnodes: [ownNode], ciliumendpoints: [cep('a', '10.0.2.10', 1000)] });
    const dp = new RecordingDatapath();
    const { loop } = startLoop(api, dp);
    await pollUntil('first sync', () => dp.calls.length === 3, 5000);
    await api.push('ciliumendpoints', 'MODIFIED', cep('a', '10.0.2.10', 'x', '2'));
    await pollUntil('the Warning event', () => api.posted.length === 1, 5000);
    loop.refresh();
    await new Promise((r) => setTimeout(r, 100));
    expect(dp.calls, 'the endpoint row stays as it was').to.have.length(3);
    expect(dp.calls[2]?.[1]).to.deep.equal([{ prefix: '10.0.2.10/32', identity: 1000 }]);
    await api.push('ciliumendpoints', 'DELETED', cep('a', '10.0.2.10', 'x', '3'));
    await pollUntil('the row removed on delete', () => dp.calls.length === 4, 5000);
    expect(dp.calls[3]).to.deep.equal(['endpoint', []]);
  });

  it('syncs the other sources when one fails, counts the error and retries it', async function () {
    const api = new MemoryApi({ ciliumnodes: [ownNode], ciliumendpoints: [cep('a', '10.0.2.10', 1000)] });
    const dp = new RecordingDatapath();
    dp.failing = 'node';
    const { registry } = startLoop(api, dp);
    await pollUntil('a retry of the failed source', () => dp.calls.filter(([s]) => s === 'node').length >= 2, 5000);
    expect(dp.calls.slice(0, 3).map(([s]) => s)).to.deep.equal(['local', 'node', 'endpoint']);
    expect(dp.calls.slice(3).every(([s]) => s === 'node'), 'only the failed source is retried').to.equal(true);
    dp.failing = undefined;
    const errors = await registry.getSingleMetricAsString('cilium_ipcache_errors_total');
    expect(errors).to.match(/cilium_ipcache_errors_total\{type="upsert",error="unexpected"\} [1-9]/);
  });
});
