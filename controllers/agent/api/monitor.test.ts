import { expect } from 'chai';
import type { DatapathEvent } from '../../../datapath/types.js';
import { MonitorHub, type MonitorLine } from './monitor.js';

const drop: DatapathEvent = {
  type: 'drop',
  endpointId: 7,
  srcIdentity: 300,
  dstIdentity: 2,
  packet: { srcIp: '10.0.0.3', dstIp: '192.0.2.1', protocol: 6, srcPort: 1000, dstPort: 80, flags: 2 },
  reason: 133,
  direction: 'egress',
  cookie: 0,
};

/** A datapath event source the test feeds, counting its readers. */
function fakeSource() {
  let push: ((e: DatapathEvent) => void) | undefined;
  const state = { readers: 0, opened: 0 };
  const source = (signal: AbortSignal): AsyncIterable<DatapathEvent> => {
    state.opened++;
    state.readers++;
    return (async function* () {
      try {
        while (!signal.aborted) {
          const e = await new Promise<DatapathEvent | undefined>((resolve) => {
            push = resolve;
            signal.addEventListener('abort', () => resolve(undefined), { once: true });
          });
          if (e !== undefined) yield e;
        }
      } finally {
        state.readers--;
      }
    })();
  };
  return { source, state, emit: (e: DatapathEvent) => push?.(e) };
}

describe('monitor hub', () => {
  it('reads the datapath only while clients are subscribed, one reader for all of them', async () => {
    const { source, state, emit } = fakeSource();
    const hub = new MonitorHub(source);
    expect(state.opened).to.equal(0);
    const a: MonitorLine[] = [];
    const b: MonitorLine[] = [];
    const offA = await hub.subscribe((e) => a.push(e));
    const offB = await hub.subscribe((e) => b.push(e));
    expect(state).to.deep.equal({ readers: 1, opened: 1 });
    await new Promise((r) => setImmediate(r));
    emit(drop);
    await new Promise((r) => setImmediate(r));
    expect(a).to.have.length(1);
    expect(b).to.have.length(1);
    expect(a[0]).to.deep.include({ ...drop, cpu: 0 });
    expect(a[0]?.time).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    offA();
    expect(hub.active).to.equal(true);
    offB();
    for (let i = 0; i < 10 && hub.active; i++) await new Promise((r) => setImmediate(r));
    expect(hub.active).to.equal(false);
    expect(state.readers).to.equal(0);
    // A new client opens a new reader.
    const offC = await hub.subscribe(() => undefined);
    expect(state.opened).to.equal(2);
    offC();
  });

  it('ends every client when the datapath stream ends on its own', async () => {
    let finish: (() => void) | undefined;
    const hub = new MonitorHub(() =>
      (async function* () {
        await new Promise<void>((resolve) => (finish = resolve));
        yield* [];
      })(),
    );
    let ended = 0;
    await hub.subscribe(() => undefined, () => ended++);
    await hub.subscribe(() => undefined, () => ended++);
    await new Promise((r) => setImmediate(r));
    finish?.();
    for (let i = 0; i < 10 && hub.active; i++) await new Promise((r) => setImmediate(r));
    expect(ended).to.equal(2);
    expect(hub.clientCount).to.equal(0);
    expect(hub.active).to.equal(false);
  });

  it('answers 503 when the datapath refuses a reader', async () => {
    const hub = new MonitorHub(() => {
      throw new Error('cilium_events: datapath closed');
    });
    let err: unknown;
    try {
      await hub.subscribe(() => undefined);
    } catch (e) {
      err = e;
    }
    expect(err).to.deep.include({ status: 503 });
    expect((err as Error).message).to.match(/^monitor: cannot read the datapath events: cilium_events: datapath closed$/);
  });
});
