// History beyond the ring through the wire: an observer with a 63-flow ring and its on-disk
// history serves the upstream hubble CLI (v1.20.2) on its unix socket; after the ring wrapped
// hundreds of times and the observer restarted (a new one on the same directory),
// `hubble observe --since 1h --to-pod shop/cart --verdict DROPPED` returns every such flow of
// the hour, each once, in order.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { HubbleObserver } from '../../../controllers/agent/hubble/observer.js';
import { idleEvents, mixedEvent, testSettings, testSources } from '../../../controllers/agent/hubble/testing.js';
import type { Flow } from '../../../controllers/hubble/flow-types.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { defaultBinDir } from '../../../hack/controlplane/paths.js';
import { runWithExitCode } from '../../envtest/command.js';
import { pollUntil } from '../../envtest/poll.js';

const HUBBLE = path.join(defaultBinDir(), 'hubble-upstream');
const FLOWS = 30_000;
const logger = newLogger('hubble-history-it', 'error');

describe('hubble history read by the upstream hubble CLI after the ring wrapped and a restart', function () {
  this.timeout(120_000);
  let dir: string;
  const stops: AbortController[] = [];
  const running: Promise<void>[] = [];

  before(() => {
    if (!existsSync(HUBBLE)) throw new Error(`${HUBBLE} is missing: build it with \`bash hack/install-tools.sh all\``);
    dir = mkdtempSync(path.join(tmpdir(), 'hubble-history-it-'));
  });

  after(async () => {
    for (const s of stops) s.abort();
    await Promise.allSettled(running);
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<HubbleObserver> {
    const settings = testSettings({ socketPath: path.join(dir, 'hubble.sock'), capacity: 63, history: { dir: path.join(dir, 'history'), maxBytes: 1 << 30, maxAgeMs: 0 } });
    const observer = new HubbleObserver({ settings, sources: testSources(), events: idleEvents, nodeAddress: '192.0.2.1', version: 'cilium-ts test', logger });
    const stop = new AbortController();
    stops.push(stop);
    running.push(observer.run(stop.signal));
    await pollUntil('the hubble socket', () => existsSync(settings.socketPath), 10_000);
    return observer;
  }

  it('observe --since 1h --to-pod shop/cart --verdict DROPPED answers from the history', async () => {
    const first = await start();
    const from = Date.now() - 50 * 60_000;
    const written: Flow[] = [];
    // Spread over the last 50 minutes; the first quarter of an hour's worth even before that.
    for (let i = 0; i < FLOWS; i++) written.push(first.ingest(mixedEvent(i), from + (i * 50 * 60_000) / FLOWS));
    stops.at(-1)!.abort();
    await running.at(-1);

    const second = await start();
    const after = [second.ingest(mixedEvent(0), Date.now()), second.ingest(mixedEvent(3), Date.now())];
    expect(second.ring.length).to.equal(2);

    const dropped = [...written, ...after].filter((f) => f.verdict === 'DROPPED' && f.destination.pod_name.startsWith('cart') && f.destination.namespace === 'shop');
    expect(dropped.length).to.be.above(FLOWS / 4);
    const res = await runWithExitCode(HUBBLE, ['observe', '--server', `unix://${path.join(dir, 'hubble.sock')}`, '--since', '1h', '--to-pod', 'shop/cart', '--verdict', 'DROPPED', '-o', 'json']);
    expect(res.code, res.stderr).to.equal(0);
    const uuids = res.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { flow: { uuid: string } }).flow.uuid);
    expect(uuids).to.deep.equal(dropped.map((f) => f.uuid));

    // An hour that ended before the restart: from the history alone, with until.
    const window = await runWithExitCode(HUBBLE, ['observe', '--server', `unix://${path.join(dir, 'hubble.sock')}`, '--since', new Date(from).toISOString(), '--until', new Date(from + 60_000).toISOString(), '-o', 'json']);
    expect(window.code, window.stderr).to.equal(0);
    const inWindow = written.filter((f) => Number(f.time.seconds) * 1000 + f.time.nanos / 1e6 <= from + 60_000);
    expect(window.stdout.trim().split('\n')).to.have.length(inWindow.length);
  });
});
