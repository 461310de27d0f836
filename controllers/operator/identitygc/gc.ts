// CiliumIdentity garbage collection, CRD mode (upstream operator/identitygc): every
// identity-gc-interval, an identity no CiliumEndpoint uses (status.identity.id) is marked with the
// heartbeat annotation holding the current time; a marked one still unused once
// identity-heartbeat-timeout has passed since its mark is deleted, at most identity-gc-rate-limit
// per identity-gc-rate-interval. Every write carries the resourceVersion the decision was made on:
// an agent that reuses an identity removes the mark, which changes the resourceVersion, so a
// delete racing with that reuse fails with 409 instead of deleting a live identity. A marked
// identity that is used again is unmarked here too.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import type { CiliumEndpoint, CiliumIdentity } from '../../../crds/gen/index.js';
import { HEARTBEAT_ANNOTATION, identityId } from '../../agent/identity/cilium-identity.js';
import { isConflict, isNotFound, type ApiClient } from '../../runtime/apiclient.js';
import { ciliumIdentities, objectPath } from '../../runtime/kinds.js';
import type { Logger } from '../../runtime/log.js';
import { bucketRateLimiter, type RateLimiter } from '../../runtime/ratelimit.js';
import type { Resource } from '../../runtime/resource.js';
import { operatorMetrics, type OperatorMetrics } from '../metrics.js';
import { runPeriodically } from '../periodic.js';

export interface IdentityGCOptions {
  client: ApiClient;
  identities: Resource<CiliumIdentity>;
  endpoints: Resource<CiliumEndpoint>;
  /** identity-gc-interval */
  intervalMs: number;
  /** identity-heartbeat-timeout */
  heartbeatTimeoutMs: number;
  /** identity-gc-rate-limit deletions per identity-gc-rate-interval */
  rateLimit: number;
  rateIntervalMs: number;
  registry: Registry;
  logger: Logger;
  now?: () => Date;
}

export interface GCRunResult {
  alive: number;
  marked: number;
  unmarked: number;
  deleted: number;
  /** Writes refused because the identity changed since it was read. */
  conflicts: number;
}

const identityType = 'crd';

export class IdentityGC {
  private readonly metrics: OperatorMetrics;
  private readonly limiter: RateLimiter;
  private readonly now: () => Date;
  private runs = { success: 0, fail: 0 };

  constructor(private readonly opts: IdentityGCOptions) {
    this.metrics = operatorMetrics(opts.registry);
    this.limiter = bucketRateLimiter(opts.rateLimit / (opts.rateIntervalMs / 1000), opts.rateLimit);
    this.now = opts.now ?? (() => new Date());
  }

  /** Runs a GC pass every interval (the first once both caches synced) until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    const { identities, endpoints, intervalMs, logger } = this.opts;
    return runPeriodically({ name: 'identity GC', reads: [identities, endpoints], intervalMs, logger }, (s) => this.runOnce(s), signal);
  }

  async runOnce(signal?: AbortSignal): Promise<GCRunResult> {
    const started = performance.now();
    const result: GCRunResult = { alive: 0, marked: 0, unmarked: 0, deleted: 0, conflicts: 0 };
    try {
      await this.pass(result, signal);
    } catch (err) {
      this.metrics.identityGCRuns.set({ outcome: 'fail', identity_type: identityType }, ++this.runs.fail);
      this.metrics.identityGCLatency.set({ outcome: 'fail', identity_type: identityType }, (performance.now() - started) / 1000);
      throw err;
    }
    this.metrics.identityGCRuns.set({ outcome: 'success', identity_type: identityType }, ++this.runs.success);
    this.metrics.identityGCLatency.set({ outcome: 'success', identity_type: identityType }, (performance.now() - started) / 1000);
    this.metrics.identityGCEntries.set({ status: 'alive', identity_type: identityType }, result.alive);
    this.metrics.identityGCEntries.set({ status: 'deleted', identity_type: identityType }, result.deleted);
    this.opts.logger.info('identity GC run done', { ...result });
    return result;
  }

  private usedIds(): Set<number> {
    const used = new Set<number>();
    for (const cep of this.opts.endpoints.store.list()) {
      const id = cep.status?.identity?.id;
      if (id !== undefined) used.add(id);
    }
    return used;
  }

  private async pass(result: GCRunResult, signal?: AbortSignal): Promise<void> {
    const used = this.usedIds();
    const now = this.now();
    for (const identity of this.opts.identities.store.list()) {
      if (signal?.aborted) return;
      const id = identityId(identity);
      // Not a numeric name: not an identity any agent allocated; leave it alone.
      if (id === undefined) continue;
      const name = identity.metadata.name as string;
      const mark = identity.metadata.annotations?.[HEARTBEAT_ANNOTATION];
      if (used.has(id)) {
        result.alive++;
        if (mark !== undefined && (await this.annotate(identity, null, signal))) result.unmarked++;
        else if (mark !== undefined) result.conflicts++;
        continue;
      }
      const markedAt = mark === undefined ? NaN : Date.parse(mark);
      if (Number.isNaN(markedAt)) {
        // Unmarked, or a mark that is not a time: (re)start its grace period now.
        if (await this.annotate(identity, now.toISOString(), signal)) {
          result.marked++;
          this.opts.logger.debug('unused identity marked', { identity: name });
        } else result.conflicts++;
        result.alive++;
        continue;
      }
      if (now.getTime() - markedAt < this.opts.heartbeatTimeoutMs) {
        result.alive++;
        continue;
      }
      const wait = this.limiter.when('delete');
      if (wait > 0) await sleep(wait, undefined, { signal });
      if (await this.delete(name, identity.metadata.resourceVersion, signal)) {
        result.deleted++;
        this.opts.logger.info('identity garbage-collected', { identity: name, markedAt: mark });
      } else result.conflicts++;
    }
  }

  // Merge patch carrying the read resourceVersion: 409 when the identity changed meanwhile.
  private async annotate(identity: CiliumIdentity, value: string | null, signal?: AbortSignal): Promise<boolean> {
    const name = identity.metadata.name as string;
    try {
      await this.opts.client.request('PATCH', objectPath(ciliumIdentities, name), {
        body: { metadata: { resourceVersion: identity.metadata.resourceVersion, annotations: { [HEARTBEAT_ANNOTATION]: value } } },
        contentType: 'application/merge-patch+json',
        signal,
      });
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  private async delete(name: string, resourceVersion: string | undefined, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.opts.client.request('DELETE', objectPath(ciliumIdentities, name), {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion } },
        signal,
      });
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
  }
}
