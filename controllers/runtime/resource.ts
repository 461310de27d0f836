// Resource<T>: one list+watch of one collection, kept in an indexed Store, feeding handlers in
// order. It never stops on its own: every failure (HTTP error, broken stream, ERROR event, a
// stream silent for too long) leads to a reconnect after a jittered backoff, 410 Gone to a relist,
// and what happened shows in health().
import { setTimeout as sleep } from 'node:timers/promises';
import type { FieldError, ValidationResult } from '../../crds/validation.js';
import { ApiError, isGone, type ApiClient, type WatchEvent } from './apiclient.js';
import { collectionPath, objectKey, type KubeObject, type ResourceType } from './kinds.js';
import { newLogger, type Logger } from './log.js';
import { Backoff, type BackoffOptions } from './ratelimit.js';
import { Store } from './store.js';

export interface ResourceHandler<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export interface ResourceHealth {
  name: string;
  /** The first list has been stored. */
  synced: boolean;
  /** The last list or watch succeeded and no error came since. */
  connected: boolean;
  lastError?: string;
  /** Reconnects after an error or a silent stream. */
  restarts: number;
  /** Full lists after the first (410 Gone). */
  relists: number;
  /** Objects whose current version the validator refuses, held at their last valid version. */
  heldInvalid: number;
  resourceVersion?: string;
}

export interface ResourceOptions<T> {
  /** Names this resource in logs and health. */
  name: string;
  client: ApiClient;
  type: ResourceType;
  /** Only this namespace; all namespaces when absent. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Objects it refuses are reported to onInvalid (e.g. crds/validation.ts). One never valid stays
   * out of the store; one that was valid keeps its last valid version there, with no event, and is
   * reported again with every version (watch or relist) until it is valid again or deleted: a
   * delete would drop what the object enforced (an identity's deny, a pod's address) and fail open.
   */
  validate?: (obj: unknown) => ValidationResult<T>;
  onInvalid?: (obj: KubeObject, errors: FieldError[]) => void;
  /** Server-side end of each watch; default 5–10 min like client-go's reflector. */
  watchTimeoutSeconds?: number;
  /** Reconnect when the watch brings neither event nor bookmark for this long; default the watch timeout + 30 s. */
  inactivityTimeoutMs?: number;
  /** Reconnect backoff; default 0.5 s → 30 s. */
  backoff?: BackoffOptions;
  /** Items per list page; default 500. */
  pageSize?: number;
  logger?: Logger;
}

interface ListAnswer {
  metadata: { resourceVersion?: string; continue?: string };
  items: KubeObject[];
}

export class Resource<T extends KubeObject> {
  readonly name: string;
  readonly store = new Store<T>();
  private readonly handlers = new Set<ResourceHandler<T>>();
  private readonly syncWaiters: (() => void)[] = [];
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly stopper = new AbortController();
  /** Keys stored at their last valid version while the apiserver's current one is refused. */
  private readonly held = new Set<string>();
  private resourceVersion?: string;
  private goneStreak = 0;
  private running?: Promise<void>;
  private state: Omit<ResourceHealth, 'name' | 'resourceVersion' | 'heldInvalid'> = { synced: false, connected: false, restarts: 0, relists: 0 };

  constructor(private readonly opts: ResourceOptions<T>) {
    this.name = opts.name;
    this.log = opts.logger ?? newLogger(`resource/${opts.name}`);
    this.backoff = new Backoff(opts.backoff ?? { initialMs: 500, maxMs: 30_000 });
  }

  /**
   * Calls `handler` for every change from now on, in order, after the store holds it. Objects
   * already stored are replayed as adds first. Returns the unsubscribe function.
   */
  on(handler: ResourceHandler<T>): () => void {
    for (const obj of this.store.list()) this.call('add', () => handler.add?.(obj));
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  get synced(): boolean {
    return this.state.synced;
  }

  health(): ResourceHealth {
    return { name: this.name, ...this.state, heldInvalid: this.held.size, resourceVersion: this.resourceVersion };
  }

  /** Starts listing and watching in the background; idempotent. */
  start(): void {
    this.running ??= this.run();
  }

  /** Ends the watch and waits for the loop to return. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
  }

  /** Resolves once the first list is stored; rejects if `signal` aborts or the resource stops first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.state.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const abort = () => reject(new Error(`resource ${this.name}: stopped waiting for sync: ${String(signal?.reason ?? 'resource stopped')}`));
      if (signal?.aborted || this.stopper.signal.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      this.stopper.signal.addEventListener('abort', abort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', abort);
        this.stopper.signal.removeEventListener('abort', abort);
        resolve();
      });
    });
  }

  private async run(): Promise<void> {
    const stop = this.stopper.signal;
    while (!stop.aborted) {
      try {
        if (this.resourceVersion === undefined) await this.list();
        await this.watch();
      } catch (err) {
        if (stop.aborted) break;
        const message = (err as Error).message;
        this.state.lastError = message;
        if (isGone(err)) {
          // Our resourceVersion is older than the apiserver keeps: only a full list catches up.
          this.log.info('resource version expired, relisting', { resource: this.name, error: message });
          this.resourceVersion = undefined;
          this.state.relists++;
          // A second 410 before any event came through is no longer a stale resourceVersion but
          // a loop; it waits like any other failure.
          if (this.goneStreak++ > 0) await sleep(this.backoff.next(), undefined, { signal: stop }).catch(() => undefined);
          continue;
        }
        this.state.connected = false;
        this.state.restarts++;
        const delay = this.backoff.next();
        this.log.warn('list/watch failed, reconnecting', { resource: this.name, error: message, retryInMs: Math.round(delay) });
        await sleep(delay, undefined, { signal: stop }).catch(() => undefined);
      }
    }
    this.state.connected = false;
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.opts.labelSelector) q.set('labelSelector', this.opts.labelSelector);
    if (this.opts.fieldSelector) q.set('fieldSelector', this.opts.fieldSelector);
    return `${collectionPath(this.opts.type, this.opts.namespace)}?${q.toString()}`;
  }

  private async list(): Promise<void> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.opts.client.request<ListAnswer>(
        'GET',
        this.query({ limit: String(this.opts.pageSize ?? 500), ...(cont ? { continue: cont } : {}) }),
        { signal: this.stopper.signal },
      );
      items.push(...page.items);
      resourceVersion = page.metadata.resourceVersion;
      cont = page.metadata.continue || undefined;
    } while (cont !== undefined);
    if (this.stopper.signal.aborted) return;
    this.replace(items);
    this.resourceVersion = resourceVersion;
    this.state.connected = true;
    // After a 410 only a working watch proves the loop is over.
    if (this.goneStreak === 0) this.backoff.reset();
    if (!this.state.synced) {
      this.state.synced = true;
      this.log.info('resource synced', { resource: this.name, objects: this.store.size, resourceVersion });
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  // A list replaces the store: what it lacks is deleted, what changed is updated.
  private replace(items: KubeObject[]): void {
    const seen = new Set<string>();
    for (const item of items) {
      const obj = this.withKind(item);
      seen.add(objectKey(obj));
      this.upsert(obj);
    }
    for (const key of this.store.keys()) if (!seen.has(key)) this.remove(key);
  }

  private async watch(): Promise<void> {
    const stop = this.stopper.signal;
    const watchAbort = new AbortController();
    const onStop = () => watchAbort.abort();
    stop.addEventListener('abort', onStop, { once: true });
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? Math.floor(300 * (1 + Math.random()));
    // On a quiet resource the apiserver sends bookmarks rarely (measured on 1.36: after 120 s and 2 s
    // before the end of a 140 s watch), but it always ends the stream at timeoutSeconds: silence
    // past that means a dead connection.
    const inactivityMs = this.opts.inactivityTimeoutMs ?? (timeoutSeconds + 30) * 1000;
    let silent = false;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        watchAbort.abort();
      }, inactivityMs);
    };
    const path = this.query({
      watch: '1',
      allowWatchBookmarks: 'true',
      resourceVersion: this.resourceVersion ?? '',
      timeoutSeconds: String(timeoutSeconds),
    });
    arm();
    const started = Date.now();
    let events = 0;
    try {
      await this.opts.client.watch(
        path,
        (event) => {
          arm();
          events++;
          this.onEvent(event);
        },
        watchAbort.signal,
      );
    } finally {
      clearTimeout(watchdog);
      stop.removeEventListener('abort', onStop);
    }
    if (stop.aborted) return;
    if (silent) throw new Error(`watch silent for ${inactivityMs} ms (no event or bookmark)`);
    // A stream that ends at once with nothing in it is a fault (a proxy, an overloaded server),
    // not the server's timeout: back off instead of spinning (client-go's "very short watch").
    if (events === 0 && Date.now() - started < 1000) throw new Error('very short watch: closed within 1 s with no event');
  }

  private onEvent(event: WatchEvent): void {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; reason?: string; message?: string };
      throw new ApiError(`watch ${this.name}: ERROR event ${status.code ?? '?'} ${status.reason ?? ''}: ${status.message ?? ''}`, status.code ?? 0, status.reason);
    }
    this.goneStreak = 0;
    const obj = this.withKind(event.object);
    const rv = obj.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    this.state.connected = true;
    this.backoff.reset();
    if (event.type === 'DELETED') this.remove(objectKey(obj));
    else this.upsert(obj);
    if (rv) this.resourceVersion = rv;
  }

  private withKind(obj: KubeObject): KubeObject {
    // List items come without apiVersion and kind.
    return { ...obj, apiVersion: this.opts.type.apiVersion, kind: this.opts.type.kind };
  }

  private upsert(raw: KubeObject): void {
    let obj = raw as T;
    if (this.opts.validate) {
      const verdict = this.opts.validate(raw);
      const key = objectKey(raw);
      if (!verdict.ok) {
        const kept = this.store.has(key);
        if (kept) this.held.add(key);
        this.log.warn(kept ? 'object refused by validation, last valid version kept' : 'object refused by validation, not stored', {
          resource: this.name,
          key,
          resourceVersion: raw.metadata?.resourceVersion,
          errors: verdict.errors,
        });
        this.call('onInvalid', () => this.opts.onInvalid?.(raw, verdict.errors));
        return;
      }
      this.held.delete(key);
      obj = verdict.value;
    }
    const old = this.store.get(objectKey(obj));
    // An unchanged resourceVersion (a relist of what the watch already brought) is no change.
    if (old !== undefined && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    this.store.upsert(obj);
    for (const h of this.handlers) {
      if (old === undefined) this.call('add', () => h.add?.(obj));
      else this.call('update', () => h.update?.(old, obj));
    }
  }

  private remove(key: string): void {
    this.held.delete(key);
    const old = this.store.delete(key);
    if (old === undefined) return;
    for (const h of this.handlers) this.call('delete', () => h.delete?.(old));
  }

  // A failing handler must not cost the others their event, nor the watch its stream.
  private call(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('event handler failed', { resource: this.name, handler: what, error: (err as Error).message });
    }
  }
}
