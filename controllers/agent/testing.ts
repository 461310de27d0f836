// An in-memory API server for the agent loops' unit tests: lists what it was given per
// collection, streams what a test pushes, and records what is POSTed (events).
import type { ApiClient, RequestOptions, WatchEvent } from '../runtime/apiclient.js';
import { pollUntil } from '../../test/envtest/poll.js';

function plural(apiPath: string): string {
  return new URL(apiPath, 'http://api').pathname.split('/').at(-1) ?? '';
}

export class MemoryApi implements ApiClient {
  readonly posted: Record<string, unknown>[] = [];
  private readonly watchers = new Map<string, (e: WatchEvent) => void>();
  constructor(private readonly items: Record<string, unknown[]> = {}) {}

  request<T>(method: string, apiPath: string, opts?: RequestOptions): Promise<T> {
    if (method === 'POST') {
      this.posted.push(opts?.body as Record<string, unknown>);
      return Promise.resolve({} as T);
    }
    return Promise.resolve({ metadata: { resourceVersion: '1' }, items: this.items[plural(apiPath)] ?? [] } as T);
  }

  watch(apiPath: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    this.watchers.set(plural(apiPath), onEvent);
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  /** Sends `event` to the watch of `collection` (a plural), once there is one. */
  async push(collection: string, type: WatchEvent['type'], object: object): Promise<void> {
    await pollUntil(`a watch on ${collection}`, () => this.watchers.has(collection), 2_000);
    this.watchers.get(collection)?.({ type, object: object as Record<string, unknown> });
  }
}

/** What a test started: loops that end with `signal`, resources to stop after them. */
export interface LoopsUnderTest {
  readonly signal: AbortSignal;
  run(loop: Promise<void>): void;
  own(resource: { stop(): Promise<void> }): void;
}

/** Registers mocha hooks giving each test a fresh stop signal; after it the loops end, then the resources stop. */
export function loopsUnderTest(): LoopsUnderTest {
  let stop = new AbortController();
  let running: Promise<void>[] = [];
  let resources: { stop(): Promise<void> }[] = [];
  beforeEach(function () {
    stop = new AbortController();
    running = [];
    resources = [];
  });
  afterEach(async function () {
    stop.abort();
    await Promise.all(running);
    await Promise.all(resources.map((r) => r.stop()));
  });
  return {
    get signal() {
      return stop.signal;
    },
    run: (loop) => running.push(loop),
    own: (resource) => resources.push(resource),
  };
}
