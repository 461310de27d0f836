import { expect } from 'chai';
import { pollUntil } from '../../../test/envtest/poll.js';
import { CiliumEndpointSync } from './cep-sync.js';
import type { EndpointRecord } from './endpoint.js';
import { endpointRecord, FakeCeps, silentLogger } from './testing.js';

describe('CiliumEndpoint sync', () => {
  const records = new Map<number, EndpointRecord>();
  let ceps: FakeCeps;
  let sync: CiliumEndpointSync;
  let stop: AbortController;
  let done: Promise<void>;

  beforeEach(() => {
    records.clear();
    ceps = new FakeCeps();
    sync = new CiliumEndpointSync({ writer: ceps, endpoint: (id) => records.get(id), nodeName: 'node-1', logger: silentLogger() });
    stop = new AbortController();
    done = sync.start(stop.signal);
  });
  afterEach(async () => {
    stop.abort();
    await done;
  });

  it('writes nothing before start, and what is due once started', async () => {
    const idle = new CiliumEndpointSync({ writer: ceps, endpoint: (id) => records.get(id), nodeName: 'node-1', logger: silentLogger() });
    records.set(4, endpointRecord(4));
    idle.enqueue(4);
    await new Promise((r) => setTimeout(r, 20));
    expect(ceps.applies).to.equal(0);
    const stopIdle = new AbortController();
    const running = idle.start(stopIdle.signal);
    await pollUntil('CEP written once started', () => ceps.objects.has('default/web-4'), 2_000);
    stopIdle.abort();
    await running;
  });

  it('writes the record as it is when the write runs, not when it was enqueued', async () => {
    ceps.failApplies = 2;
    records.set(1, endpointRecord(1, { state: 'regenerating' }));
    sync.enqueue(1);
    records.set(1, endpointRecord(1, { state: 'ready' }));
    await pollUntil('CEP written', () => ceps.objects.has('default/web-1'), 2_000);
    expect(ceps.objects.get('default/web-1')?.status?.state).to.equal('ready');
  });

  it('deletes the CEP of an endpoint whose id was reused by another pod before the delete ran', async () => {
    records.set(1, endpointRecord(1, { podName: 'old', podUid: 'uid-old' }));
    sync.enqueue(1);
    await pollUntil('old CEP written', () => ceps.objects.has('default/old'), 2_000);
    ceps.failApplies = 1;
    records.set(1, endpointRecord(1, { podName: 'new', podUid: 'uid-new' }));
    sync.enqueue(1);
    await pollUntil('new CEP written', () => ceps.objects.has('default/new'), 2_000);
    expect([...ceps.objects.keys()]).to.deep.equal(['default/new']);
  });
});
