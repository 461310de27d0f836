import { expect } from 'chai';
import { compileFilters } from '../../hubble/filter.js';
import { newLogger } from '../../runtime/log.js';
import type { HubbleEvent } from '../../hubble/flow-types.js';
import { readFlows, type FlowsQuery, FlowsQueryError } from './flows-reader.js';
import { HubbleObserver } from './observer.js';
import { FlowRing } from './ring.js';
import { policyDrop, testSources, traceNew } from './testing.js';

const T0 = 1_700_000_000_000;

function observer(capacity: number): HubbleObserver {
  const settings = { enabled: true, socketPath: '/nonexistent/hubble.sock', listenAddress: '', capacity, queueSize: 16, metricsServer: '', metrics: '' };
  return new HubbleObserver({ settings, sources: testSources(), events: async function* () {}, nodeAddress: '192.0.2.1', version: 'test', logger: newLogger('hubble-test', 'error') });
}

// Flow i at T0 + i s: a drop to port 8000+i on odd i, a trace on even i.
function fill(o: HubbleObserver, n: number, from = 0): void {
  for (let i = from; i < from + n; i++) o.ingest(i % 2 === 1 ? policyDrop(8000 + i) : traceNew(8000 + i), T0 + i * 1000);
}

async function read(ring: FlowRing, q: Partial<FlowsQuery>, signal = new AbortController().signal): Promise<HubbleEvent[]> {
  const out: HubbleEvent[] = [];
  for await (const ev of readFlows(ring, { number: 0, first: false, follow: false, matches: () => true, ...q }, signal)) out.push(ev);
  return out;
}
const ports = (evs: HubbleEvent[]) => evs.map((e) => e.flow?.l4?.TCP?.destination_port ?? `lost ${e.lost?.source} ${e.lost?.num_events_lost}`);

describe('hubble ring and GetFlows selection', () => {
  it('the ring keeps the last `capacity` events with increasing sequence numbers', () => {
    const ring = new FlowRing(3);
    expect([ring.length, ring.oldest, ring.head]).to.deep.equal([0, 0, 0]);
    const o = observer(3);
    fill(o, 5);
    expect([o.ring.length, o.ring.oldest, o.ring.head, o.seenFlows]).to.deep.equal([3, 2, 5, 5]);
    expect(o.ring.at(1)).to.equal(undefined);
    expect(o.ring.at(2)?.flow?.l4?.TCP?.destination_port).to.equal(8002);
    expect(o.ring.at(5)).to.equal(undefined);
    expect(() => new FlowRing(0)).to.throw(/capacity 0/);
  });

  it('number: the last N matching flows, oldest first; 0: all; first: from the oldest', async () => {
    const o = observer(15);
    fill(o, 10);
    expect(ports(await read(o.ring, { number: 3 }))).to.deep.equal([8007, 8008, 8009]);
    expect(ports(await read(o.ring, {}))).to.have.length(10);
    expect(ports(await read(o.ring, { number: 2, first: true }))).to.deep.equal([8000, 8001]);
    const drops = compileFilters([{ verdict: ['DROPPED'] }], []);
    expect(ports(await read(o.ring, { number: 2, matches: drops }))).to.deep.equal([8007, 8009]);
    expect(ports(await read(o.ring, { number: 100 }))).to.have.length(10);
  });

  it('since/until bound by flow time; since takes precedence over number', async () => {
    const o = observer(15);
    fill(o, 10);
    expect(ports(await read(o.ring, { sinceMs: T0 + 7000 }))).to.deep.equal([8007, 8008, 8009]);
    expect(ports(await read(o.ring, { sinceMs: T0 + 2500, untilMs: T0 + 5000 }))).to.deep.equal([8003, 8004, 8005]);
    expect(ports(await read(o.ring, { sinceMs: T0 + 2000, number: 2 }))).to.deep.equal([8002, 8003]);
    expect(ports(await read(o.ring, { untilMs: T0 + 1000 }))).to.deep.equal([8000, 8001]);
  });

  it('lost events are markers in the ring that pass every filter and count for nothing', async () => {
    const o = observer(15);
    fill(o, 2);
    o.lost(42, 'OBSERVER_EVENTS_QUEUE');
    fill(o, 2, 2);
    expect(o.lostEvents.get('OBSERVER_EVENTS_QUEUE')).to.equal(42);
    const drops = compileFilters([{ verdict: ['DROPPED'] }], []);
    expect(ports(await read(o.ring, { matches: drops }))).to.deep.equal([8001, 'lost OBSERVER_EVENTS_QUEUE 42', 8003]);
    expect(ports(await read(o.ring, { number: 3 }))).to.deep.equal([8001, 'lost OBSERVER_EVENTS_QUEUE 42', 8002, 8003]);
  });

  it('follow: only new flows (or the last N first), until the signal aborts', async () => {
    const o = observer(7);
    fill(o, 3);
    const ac = new AbortController();
    const got: HubbleEvent[] = [];
    const reading = (async () => {
      for await (const ev of readFlows(o.ring, { number: 1, first: false, follow: true, matches: () => true }, ac.signal)) {
        got.push(ev);
        if (got.length === 3) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 10));
    fill(o, 2, 3);
    await reading;
    expect(ports(got)).to.deep.equal([8002, 8003, 8004]);
  });

  it('a follower the writer overtook is told how many it missed (HUBBLE_RING_BUFFER)', async () => {
    const o = observer(3);
    fill(o, 1);
    const ac = new AbortController();
    const it = readFlows(o.ring, { number: 0, first: false, follow: true, matches: () => true }, ac.signal);
    const first = it.next();
    fill(o, 1, 1); // seq 1 wakes the reader
    expect(ports([(await first).value as HubbleEvent])).to.deep.equal([8001]);
    fill(o, 6, 2); // seq 2..7 while the reader is busy: 2..4 are gone
    const next = await Promise.all([it.next(), it.next()]);
    expect(ports(next.map((r) => r.value as HubbleEvent))).to.deep.equal(['lost HUBBLE_RING_BUFFER 3', 8005]);
    ac.abort();
  });

  it('first with follow is refused', async () => {
    const o = observer(3);
    let err: unknown;
    try {
      await read(o.ring, { first: true, follow: true });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(FlowsQueryError);
  });

  it('server status numbers: namespaces seen and flow rate over the last minute', () => {
    const o = observer(15);
    const now = Date.now();
    o.ingest(traceNew(), now - 120_000);
    for (let i = 0; i < 6; i++) o.ingest(traceNew(), now - 30_000 + i);
    expect(o.flowRate(now)).to.equal(0.1);
    expect(o.namespacesSeen(now)).to.deep.equal(['shop']);
    expect(o.namespacesSeen(now + 2 * 3600_000)).to.deep.equal([]);
  });
});
