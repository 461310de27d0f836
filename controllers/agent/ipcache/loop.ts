// The ipcache loop: one key, so any number of CiliumNode/CiliumEndpoint events and local endpoint
// changes coalesce into one recompute, which hands each source whose rows changed to the datapath.
// It owns the `local`, `node` and `endpoint` sources; `cidr` belongs to the policy loop alone, which
// must write new CIDR rows before endpoints use them and drop old ones after: a second writer of
// `cidr` with an older snapshot could undo that order for a moment. While
// the apiserver is away the watches keep their last contents, so nothing is recomputed and the
// datapath keeps enforcing with what it has; when they come back, one recompute converges.
import { Counter, type Registry } from 'prom-client';
import type { CiliumEndpoint, CiliumNode } from '../../../crds/gen/index.js';
import type { Datapath } from '../../../datapath/types.js';
import { Controller } from '../../runtime/controller.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import { COMPUTED_SOURCES, computeIPCache, type ComputedSource, type LocalEndpointAddress } from './compute.js';
import { CACHE_SYNC_FOREVER_MS, InvalidObjectReporter } from './resources.js';

const KEY = 'ipcache';

export interface IPCacheMetrics {
  events: Counter<'type'>;
  errors: Counter<'type' | 'error'>;
}

const perRegistry = new WeakMap<Registry, IPCacheMetrics>();

/** Upstream's ipcache counters: rows upserted/deleted, and failed syncs. */
export function ipcacheMetrics(registry: Registry): IPCacheMetrics {
  let m = perRegistry.get(registry);
  if (m === undefined) {
    const registers = [registry];
    m = {
      events: new Counter({ name: 'cilium_ipcache_events_total', help: 'Number of events interacting with the ipcache', labelNames: ['type'], registers }),
      errors: new Counter({ name: 'cilium_ipcache_errors_total', help: 'Number of errors interacting with the ipcache', labelNames: ['type', 'error'], registers }),
    };
    perRegistry.set(registry, m);
  }
  return m;
}

export interface IPCacheLoopOptions {
  nodeName: string;
  datapath: Pick<Datapath, 'syncIPCache'>;
  nodes: Resource<CiliumNode>;
  endpoints: Resource<CiliumEndpoint>;
  /** This node's endpoints as the endpoint manager holds them; call `refresh()` when they change. */
  localEndpoints?: () => readonly LocalEndpointAddress[];
  /** This node's device addresses, read on every recompute; call `refresh()` after adding one. */
  localAddresses?: () => readonly string[];
  /** Reports fields that could not become rows (e.g. a malformed address) as Warning events. */
  reporter?: InvalidObjectReporter;
  registry?: Registry;
  logger?: Logger;
}

export class IPCacheLoop {
  readonly controller: Controller;
  private readonly log: Logger;
  private readonly metrics?: IPCacheMetrics;
  private readonly reporter: InvalidObjectReporter;
  // What each source was last synced with, serialized; a source absent has not synced yet.
  private readonly synced = new Map<ComputedSource, string>();

  constructor(private readonly opts: IPCacheLoopOptions) {
    this.log = opts.logger ?? newLogger('ipcache');
    this.reporter = opts.reporter ?? new InvalidObjectReporter();
    if (opts.registry) this.metrics = ipcacheMetrics(opts.registry);
    this.controller = new Controller({
      name: 'ipcache',
      reconciler: { reconcile: () => this.sync() },
      registry: opts.registry,
      logger: this.log,
      cacheSyncTimeoutMs: CACHE_SYNC_FOREVER_MS,
    });
    const key = () => [KEY];
    this.controller.watch(opts.nodes, key).watch(opts.endpoints, key);
  }

  /** Recomputes soon: for inputs that are not watches (local endpoints and addresses). */
  refresh(): void {
    this.controller.enqueue(KEY);
  }

  /** Runs until `signal` aborts; the watched resources must be started by the caller. */
  async start(signal: AbortSignal): Promise<void> {
    this.controller.enqueue(KEY);
    await this.controller.start(signal);
  }

  private async sync(): Promise<void> {
    const { rows, problems } = computeIPCache({
      nodeName: this.opts.nodeName,
      nodes: this.opts.nodes.store.list(),
      endpoints: this.opts.endpoints.store.list(),
      localEndpoints: this.opts.localEndpoints?.(),
      localAddresses: this.opts.localAddresses?.(),
    });
    for (const p of problems) this.reporter.report(p.object, [{ path: p.path, message: p.message }]);
    const failures: string[] = [];
    for (const source of COMPUTED_SOURCES) {
      const serialized = JSON.stringify(rows[source]);
      if (this.synced.get(source) === serialized) continue;
      try {
        const r = await this.opts.datapath.syncIPCache(source, rows[source]);
        this.synced.set(source, serialized);
        this.metrics?.events.inc({ type: 'upsert' }, r.added + r.updated);
        this.metrics?.events.inc({ type: 'delete' }, r.removed);
        this.log.debug('ipcache source synced', { source, rows: rows[source].length, ...r });
      } catch (err) {
        this.metrics?.errors.inc({ type: 'upsert', error: 'unexpected' });
        failures.push(`${source}: ${(err as Error).message}`);
      }
    }
    // Thrown after every source had its turn, so one bad source does not hold back the others.
    if (failures.length > 0) throw new Error(`ipcache sync failed: ${failures.join('; ')}`);
  }
}
