// Two and three candidates on one real Lease with short durations (lease 2 s, renew deadline
// 1.5 s, retry 0.25 s).
import { expect } from 'chai';
import { pollUntil } from '../../envtest/poll.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { ApiError, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { leases, objectPath } from '../../../controllers/runtime/kinds.js';
import { LeaderElector, type LeaseSpec } from '../../../controllers/runtime/leaderelection.js';
import { newLogger } from '../../../controllers/runtime/log.js';

interface Candidate {
  lease: string;
  elector: LeaderElector;
  stop: AbortController;
  done: Promise<void>;
  leading: boolean;
  started: number;
  stopped: number;
}

describe('LeaderElector (real apiserver)', function () {
  this.timeout(60_000);
  let client: ApiClient;
  let ns: { name: string; cleanup(): Promise<void> };
  const all: Candidate[] = [];
  const log = newLogger('leaderelection-test', 'error');
  let overlap = false;

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    ns = await testNamespace(cp);
  });
  after(async () => {
    for (const c of all) c.stop.abort();
    await Promise.all(all.map((c) => c.done));
    await ns?.cleanup();
  });

  function candidate(lease: string, identity: string, opts: { client?: ApiClient; releaseOnCancel?: boolean } = {}): Candidate {
    const c = { lease, stop: new AbortController(), leading: false, started: 0, stopped: 0 } as Candidate;
    c.elector = new LeaderElector({
      client: opts.client ?? client,
      namespace: ns.name,
      name: lease,
      identity,
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 250,
      releaseOnCancel: opts.releaseOnCancel,
      logger: log,
      onStartedLeading: (signal) => {
        if (all.some((o) => o !== c && o.leading && o.lease === lease)) overlap = true;
        c.leading = true;
        c.started++;
        signal.addEventListener('abort', () => (c.leading = false));
      },
      onStoppedLeading: () => {
        c.leading = false;
        c.stopped++;
      },
    });
    c.done = c.elector.run(c.stop.signal);
    all.push(c);
    return c;
  }
  const readLease = (name: string) => client.request<{ spec: LeaseSpec }>('GET', objectPath(leases, name, ns.name));

  it('one leads, the other takes over at once after a graceful release', async () => {
    const a = candidate('graceful', 'a');
    await pollUntil('a leads', () => a.leading, 5000);
    const b = candidate('graceful', 'b');
    // b keeps trying for longer than a lease lasts; a keeps renewing.
    const deadline = Date.now() + 2500;
    await pollUntil('time to pass', () => Date.now() > deadline || b.leading, 5000);
    expect(b.leading, 'b must not lead while a renews').to.equal(false);
    expect((await readLease('graceful')).spec).to.include({ holderIdentity: 'a', leaseDurationSeconds: 2, leaseTransitions: 0 });
    const t0 = Date.now();
    a.stop.abort();
    await a.done;
    expect((await readLease('graceful')).spec.holderIdentity).to.be.oneOf(['', 'b']);
    await pollUntil('b leads', () => b.leading, 5000);
    const takeover = Date.now() - t0;
    // Well under the 2 s lease: b took the released lease at its next retry.
    expect(takeover).to.be.below(1200);
    expect(a.stopped).to.equal(1);
    expect((await readLease('graceful')).spec).to.include({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(overlap).to.equal(false);
  });

  it('a successor waits for the lease to expire when the leader vanishes without releasing', async () => {
    const a = candidate('crash', 'a', { releaseOnCancel: false });
    await pollUntil('a leads', () => a.leading, 5000);
    const b = candidate('crash', 'b');
    await pollUntil('b saw a', () => b.elector.leader() === 'a', 5000);
    const t0 = Date.now();
    a.stop.abort();
    await a.done;
    expect((await readLease('crash')).spec.holderIdentity).to.equal('a');
    await pollUntil('b leads', () => b.leading, 6000);
    // Not before the 2 s lease duration ran out (measured from b's own observation of a renewal).
    expect(Date.now() - t0).to.be.within(1200, 4500);
    expect((await readLease('crash')).spec).to.include({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(overlap).to.equal(false);
  });

  it('stops leading when renewals fail for the renew deadline', async () => {
    let failing = false;
    const flaky: ApiClient = {
      request: (method, path, opts) =>
        failing && method === 'PUT' ? Promise.reject(new ApiError(`${method} ${path}: HTTP 503 ServiceUnavailable`, 503)) : client.request(method, path, opts),
      watch: (path, onEvent, signal) => client.watch(path, onEvent, signal),
    };
    const a = candidate('flaky', 'a', { client: flaky });
    await pollUntil('a leads', () => a.leading, 5000);
    const t0 = Date.now();
    failing = true;
    await pollUntil('a stopped leading', () => a.stopped === 1, 5000);
    const lostAfter = Date.now() - t0;
    await a.done;
    expect(a.leading).to.equal(false);
    expect(a.elector.isLeader()).to.equal(false);
    // The last renewal was at most one retry before the failures began; renewDeadline is 1.5 s.
    expect(lostAfter).to.be.within(1200, 2600);
  });
});
