import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { compileFilters } from '../../../hubble/filter.js';
import { type Flow, type HubbleEvent, timestampMs } from '../../../hubble/flow-types.js';
import { newLogger } from '../../../runtime/log.js';
import { type FlowsQuery, readFlowsWithHistory } from '../flows-reader.js';
import { HubbleObserver } from '../observer.js';
import { mixedEvent, testSettings, testSources } from '../testing.js';
import { FlowHistory, type FlowHistoryOptions } from './store.js';

const T0 = 1_700_000_000_000;
const GIB = 1 << 30;
const logger = newLogger('hubble-history-test', 'error');

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('hubble flow history on disk', function () {
  this.timeout(60_000);
  let dir: string;
  const open: { close(): Promise<void> }[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hubble-history-'));
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((h) => h.close().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  // Small blocks reach the disk often; a burst appended in one go must not outrun a healthy disk.
  const defaults = { dir: '', maxBytes: GIB, maxAgeMs: 0, logger, blockFlows: 256, maxPendingBlocks: 100_000 };

  async function history(over: Partial<FlowHistoryOptions> = {}): Promise<FlowHistory> {
    const h = new FlowHistory({ ...defaults, dir, ...over });
    open.push(h);
    await h.open();
    return h;
  }

  // An observer whose ring holds 63 flows and whose history is `dir`; flow i at T0 + i ms.
  async function observer(over: Partial<FlowHistoryOptions> = {}): Promise<HubbleObserver> {
    const o = new HubbleObserver({
      settings: testSettings({ capacity: 63, history: { dir, maxBytes: GIB, maxAgeMs: 0 } }),
      sources: testSources(),
      events: async function* () {},
      nodeAddress: '192.0.2.1',
      version: 'test',
      logger,
    });
    Object.assign(o, { history: new FlowHistory({ ...defaults, dir, ...over }) });
    open.push(o.history!);
    await o.history!.open();
    return o;
  }

  const query = (q: Partial<FlowsQuery>): FlowsQuery => ({ number: 0, first: false, follow: false, matches: () => true, ...q });
  const portsOf = (evs: HubbleEvent[]) => evs.map((e) => e.flow!.l4!.TCP!.destination_port);

  it('since/until older than the ring reads the history after the ring wrapped many times, with filters, each flow once', async () => {
    const o = await observer();
    const live: Flow[] = [];
    for (let i = 0; i < 20_000; i++) live.push(o.ingest(mixedEvent(i), T0 + i));
    expect(o.ring.length).to.equal(63);
    const signal = new AbortController().signal;

    const old = await collect(readFlowsWithHistory(o.ring, o.history, query({ sinceMs: T0 + 1000, untilMs: T0 + 1999 }), signal));
    expect(old.map((e) => e.flow!.uuid)).to.deep.equal(live.slice(1000, 2000).map((f) => f.uuid));
    expect(old.map((e) => e.flow)).to.deep.equal(live.slice(1000, 2000));

    const drops = compileFilters([{ verdict: ['DROPPED'], destination_port: ['8003'] }], []);
    const dropped = await collect(readFlowsWithHistory(o.ring, o.history, query({ sinceMs: T0, untilMs: T0 + 5000, matches: drops }), signal));
    const expected = live.slice(0, 5001).filter((f) => f.verdict === 'DROPPED' && f.l4?.TCP?.destination_port === 8003);
    expect(expected.length).to.be.above(100);
    expect(dropped.map((e) => e.flow!.uuid)).to.deep.equal(expected.map((f) => f.uuid));

    // Across the history and the ring: all of the last 500, none twice, in order.
    const across = await collect(readFlowsWithHistory(o.ring, o.history, query({ sinceMs: T0 + 19_500 }), signal));
    expect(across.map((e) => e.flow!.uuid)).to.deep.equal(live.slice(19_500).map((f) => f.uuid));
    // number counts across both.
    const firstTen = await collect(readFlowsWithHistory(o.ring, o.history, query({ sinceMs: T0 + 19_900, number: 10 }), signal));
    expect(portsOf(firstTen)).to.deep.equal(live.slice(19_900, 19_910).map((f) => f.l4!.TCP!.destination_port));
    expect(firstTen.map((e) => e.flow!.uuid)).to.deep.equal(live.slice(19_900, 19_910).map((f) => f.uuid));
    // Without since, the ring alone answers, as upstream's.
    const last = await collect(readFlowsWithHistory(o.ring, o.history, query({ number: 5 }), signal));
    expect(last.map((e) => e.flow!.uuid)).to.deep.equal(live.slice(-5).map((f) => f.uuid));
  });

  it('survives a restart: a new history on the same directory reads the flows an earlier one wrote', async () => {
    const o = await observer();
    const live: Flow[] = [];
    for (let i = 0; i < 3000; i++) live.push(o.ingest(mixedEvent(i), T0 + i));
    await o.history!.close();

    const next = await observer();
    const restarted: Flow[] = [];
    for (let i = 3000; i < 3100; i++) restarted.push(next.ingest(mixedEvent(i), T0 + i));
    const got = await collect(readFlowsWithHistory(next.ring, next.history, query({ sinceMs: T0 }), new AbortController().signal));
    expect(got.map((e) => e.flow)).to.deep.equal([...live, ...restarted]);
    expect(next.history!.stats().segments).to.equal(2);
  });

  it('a torn block at the end of a segment (the agent died writing it) is cut off; the rest reads', async () => {
    const h = await history();
    const o = new HubbleObserver({ settings: testSettings(), sources: testSources(), events: async function* () {}, nodeAddress: '192.0.2.1', version: 'test', logger });
    const flows = Array.from({ length: 600 }, (_, i) => o.ingest(mixedEvent(i), T0 + i));
    for (const f of flows) h.append(f);
    await h.close();
    const file = readdirSync(dir).sort()[0]!;
    const size = statSync(path.join(dir, file)).size;
    appendFileSync(path.join(dir, file), Buffer.from('HFB1 torn'));
    const again = await history();
    expect(statSync(path.join(dir, file)).size).to.equal(size);
    expect(((await collect(again.read(undefined, undefined))).flat()).map((f) => f.uuid)).to.deep.equal(flows.map((f) => f.uuid));
  });

  it('a flow the encoding cannot take is lost from the history alone, counted; its block reads', async () => {
    let lost = 0;
    const h = await history({ onLost: (n) => (lost += n) });
    const o = new HubbleObserver({ settings: testSettings(), sources: testSources(), events: async function* () {}, nodeAddress: '192.0.2.1', version: 'test', logger });
    const flows = Array.from({ length: 100 }, (_, i) => o.ingest(mixedEvent(i), T0 + i));
    // JSON cannot hold a bigint: the unknown field that would travel as JSON makes the row throw.
    const bad = { ...flows[50]!, uuid: 'bad', time: { seconds: String(T0 / 1000 + 99), nanos: 0 }, sequence: 1n } as Flow;
    for (const f of [...flows.slice(0, 50), bad, ...flows.slice(50)]) h.append(f);
    expect([lost, h.stats().lostFlows]).to.deep.equal([1, 1]);
    expect((await collect(h.read(undefined, undefined))).flat()).to.deep.equal(flows);
    await h.flush();
    expect((await collect(h.read(undefined, undefined))).flat()).to.deep.equal(flows);
  });

  it('a slow disk loses flows from the history, counted, never from the ring; appending never waits', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    let lost = 0;
    const write = async (file: FileHandle, data: Buffer) => {
      await stalled;
      await file.write(data);
    };
    const o = await observer({ write, maxPendingBlocks: 2, onLost: (n) => (lost += n) });
    const started = performance.now();
    const live: Flow[] = [];
    for (let i = 0; i < 256 * 10; i++) live.push(o.ingest(mixedEvent(i), T0 + i));
    expect(performance.now() - started, 'ingest while the disk stalls').to.be.below(5000);
    // 10 blocks: 2 wait for the disk, 8 are lost; the ring has the newest as always.
    expect(lost).to.equal(256 * 8);
    expect(o.history!.stats().lostFlows).to.equal(256 * 8);
    expect(o.ring.at(o.ring.head - 1)!.flow!.uuid).to.equal(live.at(-1)!.uuid);
    release();
    await o.history!.flush();
    const kept = (await collect(o.history!.read(undefined, undefined))).flat();
    expect(kept.map((f) => f.uuid)).to.deep.equal(live.slice(0, 512).map((f) => f.uuid));
    expect(o.history!.stats().writtenFlows).to.equal(512);
  });

  it('keeps to its size limit: the oldest segments go first', async () => {
    const o = await observer({ maxBytes: 64 * 1024, segmentBytes: 8 * 1024 });
    const live: Flow[] = [];
    for (let i = 0; i < 60_000; i++) live.push(o.ingest(mixedEvent(i), T0 + i));
    await o.history!.flush();
    const stats = o.history!.stats();
    const onDisk = readdirSync(dir).reduce((sum, n) => sum + statSync(path.join(dir, n)).size, 0);
    expect(onDisk).to.equal(stats.bytes);
    expect(onDisk).to.be.at.most(64 * 1024);
    expect(stats.segments).to.be.above(4);
    const kept = (await collect(o.history!.read(undefined, undefined))).flat();
    expect(kept.length).to.equal(stats.flows);
    expect(kept.length).to.be.below(60_000).and.above(10_000);
    // The newest are all there, the oldest gone.
    expect(kept.map((f) => f.uuid)).to.deep.equal(live.slice(-kept.length).map((f) => f.uuid));
  });

  it('keeps to its age limit: segments whose newest flow is older go', async () => {
    let now = T0;
    const o = await observer({ maxAgeMs: 60_000, segmentBytes: 4096, now: () => now });
    for (let i = 0; i < 5000; i++) o.ingest(mixedEvent(i), T0 + i * 30); // 150 s of flows
    now = T0 + 150_000;
    await o.history!.flush();
    const kept = (await collect(o.history!.read(undefined, undefined))).flat();
    expect(kept.length).to.be.above(0);
    // Nothing of a block that ended before now - 60 s; what stays reaches back at most a block further.
    const newestDropped = timestampMs(kept[0]!.time);
    expect(newestDropped).to.be.at.least(now - 60_000 - 30_000);
    expect(timestampMs(kept.at(-1)!.time)).to.equal(T0 + 4999 * 30);
    // A history all past its age leaves nothing behind.
    now = T0 + 10 * 60_000;
    o.ingest(mixedEvent(1), now);
    await o.history!.flush();
    await o.history!.flush();
    const left = (await collect(o.history!.read(undefined, undefined))).flat();
    expect(left.map((f) => timestampMs(f.time))).to.deep.equal([now]);
  });
});
