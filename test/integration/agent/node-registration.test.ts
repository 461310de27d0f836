// The agent's node loop on the real apiserver: it creates its CiliumNode, waits for the podCIDR
// the test sets as the operator would, allocates router then health in it, and mirrors used IPs
// to status.ipam.used at most once per interval; after a restart it keeps its addresses.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { sharedControlPlane } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';
import { isNotFound, newApiClient, type ApiClient, type RequestOptions, type WatchEvent } from '../../../controllers/runtime/apiclient.js';
import { ciliumNodes, objectPath } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { apply } from '../../../controllers/runtime/ssa.js';
import { fieldManagerOf, NodeRegistration } from '../../../controllers/agent/node/registration.js';

const log = newLogger('node-registration-test', 'error');

/** The real client, counting the status writes that pass through it. */
class CountingClient implements ApiClient {
  readonly statusWrites: number[] = [];
  constructor(private readonly inner: ApiClient) {}
  request<T>(method: string, apiPath: string, opts?: RequestOptions): Promise<T> {
    if (method === 'PATCH' && apiPath.includes('/status?')) this.statusWrites.push(Date.now());
    return this.inner.request<T>(method, apiPath, opts);
  }
  watch(apiPath: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    return this.inner.watch(apiPath, onEvent, signal);
  }
}

describe('NodeRegistration (real apiserver)', function () {
  this.timeout(60_000);
  const INTERVAL_MS = 1500;
  let client: ApiClient;
  const nodeName = `test-node-${randomBytes(4).toString('hex')}`;
  const running: { stop: AbortController; done: Promise<void> }[] = [];

  before(async () => {
    client = newApiClient((await sharedControlPlane()).kubeConfig);
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      r.stop.abort();
      await r.done;
    }
  });
  after(async () => {
    await client.request('DELETE', objectPath(ciliumNodes, nodeName)).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  });

  function startRegistration(counting: CountingClient): NodeRegistration {
    const reg = new NodeRegistration({ client: counting, nodeName, nodeIP: '192.0.2.10', statusUpdateIntervalMs: INTERVAL_MS, logger: log });
    const stop = new AbortController();
    running.push({ stop, done: reg.start(stop.signal) });
    return reg;
  }
  const get = () => client.request<CiliumNode>('GET', objectPath(ciliumNodes, nodeName));
  let latest: CiliumNode | undefined;
  async function until(what: string, check: (n: CiliumNode) => boolean): Promise<CiliumNode> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      latest = await get().catch(() => undefined);
      if (latest !== undefined && check(latest)) return latest;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; CiliumNode: ${JSON.stringify(latest)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('registers, waits for the podCIDR, allocates router then health and mirrors used IPs rate-limited', async () => {
    const counting = new CountingClient(client);
    const reg = startRegistration(counting);
    let addressing: Awaited<ReturnType<NodeRegistration['waitForPodCIDR']>> | undefined;
    void reg.waitForPodCIDR().then((a) => (addressing = a));

    const created = await until('the CiliumNode with its InternalIP', (n) => n.spec.addresses !== undefined);
    expect(created.spec).to.deep.equal({ addresses: [{ type: 'InternalIP', ip: '192.0.2.10' }] });
    await new Promise((r) => setTimeout(r, 300));
    expect(addressing, 'no podCIDR yet').to.equal(undefined);

    // The operator's part.
    const operatorPart: CiliumNode = { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name: nodeName }, spec: { ipam: { podCIDRs: ['10.77.3.0/24'] } } };
    await apply(client, ciliumNodes, operatorPart, { fieldManager: 'cilium-operator-test' });
    await pollUntil('the podCIDR reaching the agent', () => addressing !== undefined, 10_000);
    expect(addressing).to.deep.equal({ podCIDR: '10.77.3.0/24', routerIP: '10.77.3.1', healthIP: '10.77.3.2' });
    reg.restore({});

    const registered = await until('router, health and their status', (n) => n.spec.health?.ipv4 === '10.77.3.2' && n.status?.ipam?.used !== undefined);
    expect(registered.spec.addresses).to.deep.equal([
      { type: 'InternalIP', ip: '192.0.2.10' },
      { type: 'CiliumInternalIP', ip: '10.77.3.1' },
    ]);
    expect(registered.spec.ipam?.podCIDRs, 'the operator\'s field is left alone').to.deep.equal(['10.77.3.0/24']);
    const agentFields = (registered.metadata.managedFields ?? []).filter((f) => f.manager === fieldManagerOf(nodeName)).map((f) => JSON.stringify(f.fieldsV1));
    expect(agentFields).to.have.length.greaterThan(0);
    expect(agentFields.join()).to.not.include('podCIDRs');
    expect(registered.status?.ipam?.used).to.deep.equal({ '10.77.3.1': { owner: 'router' }, '10.77.3.2': { owner: 'health' } });

    // A burst of allocations right after a write coalesces into one write one interval later.
    const writesBefore = counting.statusWrites.length;
    const lastWrite = counting.statusWrites.at(-1) as number;
    const ipam = reg.ipam();
    const pods = ['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e'].map((owner) => ipam.allocate(owner));
    expect(pods).to.deep.equal(['10.77.3.3', '10.77.3.4', '10.77.3.5', '10.77.3.6', '10.77.3.7']);
    const mirrored = await until('the pods in status', (n) => Object.keys(n.status?.ipam?.used ?? {}).length === 7);
    expect(mirrored.status?.ipam?.used?.['10.77.3.7']).to.deep.equal({ owner: 'ns/e' });
    expect(counting.statusWrites.length - writesBefore, 'one write for the burst').to.equal(1);
    expect((counting.statusWrites.at(-1) as number) - lastWrite).to.be.at.least(INTERVAL_MS - 50);

    expect(ipam.release('10.77.3.4')).to.equal(true);
    const released = await until('the release in status', (n) => Object.keys(n.status?.ipam?.used ?? {}).length === 6);
    expect(released.status?.ipam?.used).to.not.have.property('10.77.3.4');
  });

  it('after a restart keeps router and health from status and takes pod allocations back without a write', async () => {
    const before = await get();
    const counting = new CountingClient(client);
    const reg = startRegistration(counting);
    const addressing = await reg.waitForPodCIDR(AbortSignal.timeout(10_000));
    expect(addressing).to.deep.equal({ podCIDR: '10.77.3.0/24', routerIP: '10.77.3.1', healthIP: '10.77.3.2' });
    const pods = Object.fromEntries(Object.entries(before.status?.ipam?.used ?? {}).filter(([, a]) => a?.owner?.startsWith('ns/')));
    expect(Object.keys(pods)).to.have.length(4);
    await new Promise((r) => setTimeout(r, 300));
    expect(counting.statusWrites, 'nothing written before the endpoints are restored').to.have.length(0);
    reg.restore(pods as Record<string, { owner: string }>);
    expect(reg.used()).to.deep.equal(before.status?.ipam?.used);
    expect(reg.ipam().allocate('ns/f'), 'a released address is handed out again').to.equal('10.77.3.4');
    await until('the new pod in status', (n) => n.status?.ipam?.used?.['10.77.3.4']?.owner === 'ns/f');
    expect(counting.statusWrites, 'only the new allocation was written').to.have.length(1);
  });

  it('puts a deleted CiliumNode back with its addresses and used IPs', async () => {
    const reg = startRegistration(new CountingClient(client));
    await reg.waitForPodCIDR(AbortSignal.timeout(10_000));
    reg.restore({});
    const before = await until('status in place', (n) => n.status?.ipam?.used !== undefined);
    await client.request('DELETE', objectPath(ciliumNodes, nodeName));
    const back = await until('the node recreated', (n) => n.metadata.uid !== before.metadata.uid && n.status?.ipam?.used !== undefined);
    expect(back.spec.addresses).to.deep.equal(before.spec.addresses);
    expect(back.spec.health).to.deep.equal({ ipv4: '10.77.3.2' });
    expect(back.status?.ipam?.used).to.deep.equal({ '10.77.3.1': { owner: 'router' }, '10.77.3.2': { owner: 'health' } });
  });
});
