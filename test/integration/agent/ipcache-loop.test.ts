// The ipcache loop end to end: CiliumNodes and CiliumEndpoints in the real apiserver become rows
// of the real cilium_ipcache_v2 map, leave it with their objects, and stay through an apiserver
// outage until the watches come back and bring what changed meanwhile.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import type { CiliumEndpoint, CiliumNode } from '../../../crds/gen/index.js';
import { BpfMap } from '../../../datapath/libbpf/map.js';
import { LinuxDatapath } from '../../../datapath/linux/linux-datapath.js';
import { makePinDir, removePinDir } from '../../../datapath/linux/testing/fixtures.js';
import { decodeIpcacheKey, decodeRemoteEndpointInfo } from '../../../datapath/maps/ipcache.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';
import { ApiError, isNotFound, newApiClient, type ApiClient, type RequestOptions, type WatchEvent } from '../../../controllers/runtime/apiclient.js';
import { EventRecorder } from '../../../controllers/runtime/events.js';
import { ciliumEndpoints, ciliumNodes, collectionPath, coreEvents, objectPath } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import type { Resource } from '../../../controllers/runtime/resource.js';
import { IPCacheLoop } from '../../../controllers/agent/ipcache/loop.js';
import { ciliumEndpointResource, ciliumNodeResource, InvalidObjectReporter, REASON_INVALID } from '../../../controllers/agent/ipcache/resources.js';

const log = newLogger('ipcache-loop-test', 'error');

/** The real client, except while `down()`: every request fails and open watches break. */
class OutageClient implements ApiClient {
  private isDown = false;
  private readonly open = new Set<AbortController>();
  constructor(private readonly inner: ApiClient) {}

  request<T>(method: string, apiPath: string, opts?: RequestOptions): Promise<T> {
    if (this.isDown) return Promise.reject(new ApiError(`${method} ${apiPath}: connect ECONNREFUSED (test outage)`, 0));
    return this.inner.request<T>(method, apiPath, opts);
  }

  async watch(apiPath: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    if (this.isDown) throw new ApiError(`watch ${apiPath}: connect ECONNREFUSED (test outage)`, 0);
    const own = new AbortController();
    this.open.add(own);
    try {
      await this.inner.watch(apiPath, onEvent, AbortSignal.any([signal, own.signal]));
    } finally {
      this.open.delete(own);
    }
    if (own.signal.aborted && !signal.aborted) throw new ApiError(`watch ${apiPath}: read ECONNRESET (test outage)`, 0);
  }

  down(): void {
    this.isDown = true;
    for (const c of this.open) c.abort();
  }

  up(): void {
    this.isDown = false;
  }
}

type Row = { identity: number; tunnelEndpoint: string; flags: number };

describe('IPCacheLoop (real apiserver, real datapath)', function () {
  this.timeout(90_000);
  const suffix = randomBytes(4).toString('hex');
  const own = `ipc-own-${suffix}`;
  const remote = `ipc-remote-${suffix}`;
  let client: ApiClient;
  let outage: OutageClient;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;
  let pinDir: string | undefined;
  let dp: LinuxDatapath | undefined;
  let resources: Resource<CiliumNode | CiliumEndpoint>[] = [];
  const stop = new AbortController();
  let loopDone: Promise<void> | undefined;

  const cleanups: (() => Promise<void>)[] = [
    async () => {
      stop.abort();
      await loopDone;
    },
    async () => {
      for (const r of resources) await r.stop();
    },
    async () => {
      for (const name of [own, remote]) {
        await client.request('DELETE', objectPath(ciliumNodes, name)).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
      }
    },
    async () => ns?.cleanup(),
    async () => dp?.close(),
    // eslint-disable-next-line @typescript-eslint/require-await
    async () => removePinDir(pinDir),
  ];

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    outage = new OutageClient(client);
    ns = await testNamespace(cp);
    pinDir = makePinDir();
    dp = await LinuxDatapath.open({ bpffsDir: pinDir, logger: log });
  });
  after(async () => {
    const errors: unknown[] = [];
    for (const c of cleanups) await c().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw new Error(`cleanup: ${errors.map(String).join('; ')}`);
  });

  function node(name: string, internal: string, router: string, health: string): CiliumNode {
    return {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNode',
      metadata: { name },
      spec: { addresses: [{ type: 'InternalIP', ip: internal }, { type: 'CiliumInternalIP', ip: router }], health: { ipv4: health } },
    };
  }
  function cep(name: string, nodeName: string, ipv4: string, id: number): CiliumEndpoint {
    return {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumEndpoint',
      metadata: { name, namespace: ns?.name },
      status: { id: 1, identity: { id }, networking: { addressing: [{ ipv4 }], node: nodeName }, state: 'ready' },
    };
  }
  const create = (type: typeof ciliumNodes, body: CiliumNode | CiliumEndpoint) =>
    client.request('POST', collectionPath(type, body.metadata.namespace), { body });
  const remove = (type: typeof ciliumNodes, name: string, namespace?: string) => client.request('DELETE', objectPath(type, name, namespace));

  /** This test's rows in the pinned map (its addresses are in 198.18.0.0/24 and 10.213.0.0/16). */
  function mapRows(): Record<string, Row> {
    const map = BpfMap.openPinned(path.join(pinDir as string, 'cilium_ipcache_v2'));
    try {
      const out: Record<string, Row> = {};
      for (const [k, v] of map.entries()) {
        const prefix = decodeIpcacheKey(k);
        if (!prefix.startsWith('198.18.0.') && !prefix.startsWith('10.213.')) continue;
        const { identity, tunnelEndpoint, flags } = decodeRemoteEndpointInfo(v);
        out[prefix] = { identity, tunnelEndpoint, flags };
      }
      return out;
    } finally {
      map.close();
    }
  }
  const local = (identity: number): Row => ({ identity, tunnelEndpoint: '0.0.0.0', flags: 0 });
  const tunnelled = (identity: number): Row => ({ identity, tunnelEndpoint: '198.18.0.2', flags: 2 });
  async function expectRows(what: string, expected: Record<string, Row>): Promise<void> {
    await pollUntil(what, () => JSON.stringify(Object.entries(mapRows()).sort()) === JSON.stringify(Object.entries(expected).sort()), 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; map holds ${JSON.stringify(mapRows())}`);
    });
  }

  it('writes nodes and endpoints as rows, keeps them through an outage and converges after it', async () => {
    await create(ciliumNodes, node(own, '198.18.0.1', '10.213.1.1', '10.213.1.2'));
    await create(ciliumNodes, node(remote, '198.18.0.2', '10.213.2.1', '10.213.2.2'));
    await create(ciliumEndpoints, cep('pod-local', own, '10.213.1.10', 70001));
    await create(ciliumEndpoints, cep('pod-remote', remote, '10.213.2.10', 70002));
    await create(ciliumEndpoints, cep('pod-bad', remote, '10.213.2.300', 70003));

    const events = new EventRecorder({ client, component: 'cilium-agent', logger: log });
    const reporter = new InvalidObjectReporter(events);
    const nodes = ciliumNodeResource('ciliumnodes', { client: outage, logger: log }, reporter);
    const endpoints = ciliumEndpointResource('ciliumendpoints', { client: outage, logger: log }, reporter);
    resources = [nodes, endpoints] as Resource<CiliumNode | CiliumEndpoint>[];
    const loop = new IPCacheLoop({ nodeName: own, datapath: dp as LinuxDatapath, nodes, endpoints, reporter, logger: log });
    nodes.start();
    endpoints.start();
    loopDone = loop.start(stop.signal);

    const all = {
      '198.18.0.1/32': local(1),
      '10.213.1.1/32': local(1),
      '10.213.1.2/32': local(4),
      '198.18.0.2/32': local(6),
      '10.213.2.1/32': tunnelled(6),
      '10.213.2.2/32': tunnelled(4),
      '10.213.1.10/32': local(70001),
      '10.213.2.10/32': tunnelled(70002),
    };
    await expectRows('rows of both nodes and the valid endpoints', all);

    // The malformed address is skipped and named in an event on its CiliumEndpoint.
    const warned = async () => {
      const list = await client.request<{ items: { involvedObject: { name: string }; reason: string; message: string }[] }>('GET', collectionPath(coreEvents, ns?.name));
      return list.items.filter((e) => e.involvedObject.name === 'pod-bad' && e.reason === REASON_INVALID);
    };
    const deadline = Date.now() + 10_000;
    let found = await warned();
    while (found.length === 0 && Date.now() < deadline) {
      await sleep(100);
      found = await warned();
    }
    expect(found.map((e) => e.message)).to.deep.equal(['CiliumEndpoint ignored: status.networking.addressing[0].ipv4: "10.213.2.300" is not an IPv4 address']);

    // Outage: the watches break, the endpoint goes meanwhile, the rows stay.
    outage.down();
    await pollUntil('both watches noticing the outage', () => !nodes.health().connected && !endpoints.health().connected, 10_000);
    await remove(ciliumEndpoints, 'pod-remote', ns?.name);
    loop.refresh();
    await sleep(1000);
    expect(mapRows(), 'an outage changes nothing').to.deep.equal(all);

    outage.up();
    const { ['10.213.2.10/32']: _gone, ...withoutRemotePod } = all;
    await expectRows('the endpoint deleted during the outage leaving once the watch is back', withoutRemotePod);

    await remove(ciliumNodes, remote);
    await remove(ciliumEndpoints, 'pod-local', ns?.name);
    await expectRows('only this node left', { '198.18.0.1/32': local(1), '10.213.1.1/32': local(1), '10.213.1.2/32': local(4) });
  });
});
