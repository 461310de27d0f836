// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease is taken
// only when its holder let it expire (judged by our own clock from when we last saw it change),
// every write carries the resourceVersion read (a lost race is a 409, not two leaders), a leader
// that cannot renew within renewDeadline stops leading, and a graceful stop releases the lease so
// a successor takes over at its next retry.
import { setTimeout as sleep } from 'node:timers/promises';
import { isConflict, isNotFound, type ApiClient } from './apiclient.js';
import { leases, objectPath, collectionPath } from './kinds.js';
import { newLogger, type Logger } from './log.js';
import { jitter } from './ratelimit.js';

/** Upstream cilium-operator's Lease and timings (operator flags leader-election-lease-duration etc.). */
export const operatorLeaderElection = {
  namespace: 'kube-system',
  name: 'cilium-operator-resource-lock',
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  client: ApiClient;
  /** The Lease; upstream's operator uses kube-system/cilium-operator-resource-lock. */
  namespace: string;
  name: string;
  /** Unique per candidate (upstream: hostname plus a random suffix). */
  identity: string;
  /** Default 15 s; whole seconds (the Lease stores seconds). */
  leaseDurationMs?: number;
  /** Default 10 s. */
  renewDeadlineMs?: number;
  /** Default 2 s. */
  retryPeriodMs?: number;
  /** Release the lease when run()'s signal aborts; default true. */
  releaseOnCancel?: boolean;
  /** Runs while leading; `signal` aborts when leading ends. A returned promise is awaited before release. */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  onStoppedLeading?(): void;
  onNewLeader?(identity: string): void;
  logger?: Logger;
}

// metav1.MicroTime: RFC 3339 with six fractional digits.
function microTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

export class LeaderElector {
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;
  private observed?: LeaseSpec;
  private observedAt = 0;
  private leading = false;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.leaseDurationSeconds = Math.ceil((opts.leaseDurationMs ?? 15_000) / 1000);
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (this.leaseDurationSeconds * 1000 <= this.renewDeadlineMs) throw new Error('leader election: leaseDuration must be greater than renewDeadline');
    if (this.renewDeadlineMs <= this.retryPeriodMs * 1.2) throw new Error('leader election: renewDeadline must be greater than retryPeriod*1.2');
    this.log = opts.logger ?? newLogger('leaderelection');
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen on the Lease. */
  leader(): string | undefined {
    return this.observed?.holderIdentity || undefined;
  }

  /**
   * Campaigns until leading (or `signal` aborts), leads until renewal fails or `signal` aborts,
   * then releases (on abort) and resolves. Losing the lease calls onStoppedLeading and resolves.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (!(await this.acquire(signal))) return;
    const leadership = new AbortController();
    this.leading = true;
    this.log.info('started leading', { lease: this.leaseName(), identity: this.opts.identity });
    const work = Promise.resolve()
      .then(() => this.opts.onStartedLeading(leadership.signal))
      .catch((err: Error) => this.log.error('leader work failed', { lease: this.leaseName(), error: err.message }));
    const kept = await this.renewLoop(signal);
    leadership.abort();
    this.leading = false;
    if (kept) {
      // Our work stops before the lease is offered, so two leaders never overlap.
      await work;
      if (this.opts.releaseOnCancel ?? true) await this.release();
    } else {
      this.log.error('leadership lost: lease not renewed within renewDeadline', { lease: this.leaseName(), renewDeadlineMs: this.renewDeadlineMs });
    }
    this.opts.onStoppedLeading?.();
  }

  private leaseName(): string {
    return `${this.opts.namespace}/${this.opts.name}`;
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(AbortSignal.any([signal, AbortSignal.timeout(this.renewDeadlineMs)]))) return true;
      await sleep(jitter(this.retryPeriodMs, 1.2), undefined, { signal }).catch(() => undefined);
    }
    return false;
  }

  // Resolves true while leadership is kept until `signal` aborts, false once renewal failed for renewDeadline.
  private async renewLoop(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      await sleep(this.retryPeriodMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      const deadline = Date.now() + this.renewDeadlineMs;
      let renewed = false;
      while (!renewed && !signal.aborted && Date.now() < deadline) {
        renewed = await this.tryAcquireOrRenew(AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, deadline - Date.now()))]));
        if (!renewed) await sleep(Math.min(this.retryPeriodMs, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => undefined);
      }
      if (!renewed && !signal.aborted) return false;
    }
    return true;
  }

  private record(old: LeaseSpec | undefined, now: Date): LeaseSpec {
    // Still ours (also after a restart under the same identity): not a transition.
    const ours = old?.holderIdentity === this.opts.identity;
    return {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: ours && old?.acquireTime ? old.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: ours ? (old?.leaseTransitions ?? 0) : (old?.leaseTransitions ?? -1) + 1,
    };
  }

  private observe(spec: LeaseSpec | undefined): void {
    if (JSON.stringify(spec) === JSON.stringify(this.observed)) return;
    const before = this.observed?.holderIdentity;
    this.observed = spec;
    this.observedAt = Date.now();
    const holder = spec?.holderIdentity;
    if (holder && holder !== before) this.opts.onNewLeader?.(holder);
  }

  /** One attempt; false on a lost race, a valid foreign lease or any API error (logged). */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name } = this.opts;
    const path = objectPath(leases, name, namespace);
    const now = new Date();
    try {
      let lease: Lease;
      try {
        lease = await client.request<Lease>('GET', path, { signal });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const created: Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: this.record(undefined, now) };
        const answer = await client.request<Lease>('POST', collectionPath(leases, namespace), { body: created, signal });
        this.observe(answer.spec);
        return true;
      }
      this.observe(lease.spec);
      const holder = lease.spec?.holderIdentity;
      const validUntil = this.observedAt + (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
      if (holder && holder !== this.opts.identity && validUntil > now.getTime()) return false;
      const updated: Lease = { ...lease, spec: this.record(lease.spec, now) };
      // metadata.resourceVersion from the read makes this a compare-and-swap.
      const answer = await client.request<Lease>('PUT', path, { body: updated, signal });
      this.observe(answer.spec);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log.warn('lease acquire/renew failed', { lease: this.leaseName(), error: (err as Error).message });
      return false;
    }
  }

  // Offers the lease to the next candidate: no holder, and a duration of 1 s as client-go writes.
  private async release(): Promise<void> {
    const path = objectPath(leases, this.opts.name, this.opts.namespace);
    try {
      const lease = await this.opts.client.request<Lease>('GET', path, { timeoutMs: this.renewDeadlineMs });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      const now = microTime(new Date());
      const released: Lease = {
        ...lease,
        spec: { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: lease.spec.leaseTransitions },
      };
      await this.opts.client.request<Lease>('PUT', path, { body: released, timeoutMs: this.renewDeadlineMs });
      this.log.info('lease released', { lease: this.leaseName(), identity: this.opts.identity });
    } catch (err) {
      this.log.warn('lease release failed; successor waits for expiry', { lease: this.leaseName(), error: (err as Error).message });
    }
  }
}
