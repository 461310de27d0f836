// GET /monitor: the datapath's events as NDJSON, one DatapathEvent per line plus `time` and
// `cpu`. Reading the ring buffer consumes it, so the agent reads it only while a monitor client
// is connected, through one reader shared by every client.
import type { DatapathEvent } from '../../../datapath/types.js';
import { ApiError } from './errors.js';
import type { Router } from './router.js';

export type MonitorLine = DatapathEvent & { time: string; cpu: number };

type EventSource = (signal: AbortSignal) => AsyncIterable<DatapathEvent>;

interface Client {
  onEvent: (e: MonitorLine) => void;
  /** The reader ended on its own (the datapath's stream broke or closed): the client's stream ends too. */
  onEnd: () => void;
}

export class MonitorHub {
  private readonly clients = new Set<Client>();
  private reader?: { stop: AbortController; done: Promise<void> };

  constructor(private readonly events: EventSource) {}

  get clientCount(): number {
    return this.clients.size;
  }

  /** Whether the hub holds the datapath's ring (from the first client until the last one's reader stopped). */
  get active(): boolean {
    return this.reader !== undefined;
  }

  /** Adds a client; the first one starts the reader. Throws 503 when the datapath refuses one. */
  async subscribe(onEvent: (e: MonitorLine) => void, onEnd: () => void = () => undefined): Promise<() => void> {
    // A reader being stopped still holds the ring until its poll returns.
    if (this.reader?.stop.signal.aborted) await this.reader.done;
    if (this.reader === undefined) this.startReader();
    const client = { onEvent, onEnd };
    this.clients.add(client);
    return () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.reader?.stop.abort();
    };
  }

  private startReader(): void {
    const stop = new AbortController();
    let events: AsyncIterable<DatapathEvent>;
    try {
      events = this.events(stop.signal);
    } catch (err) {
      throw new ApiError(503, `monitor: cannot read the datapath events: ${(err as Error).message}`);
    }
    const done = (async () => {
      try {
        for await (const e of events) {
          const line: MonitorLine = { ...e, time: new Date().toISOString(), cpu: 0 };
          for (const c of this.clients) c.onEvent(line);
        }
      } finally {
        if (this.reader?.stop === stop) this.reader = undefined;
        if (!stop.signal.aborted) {
          for (const c of this.clients) c.onEnd();
          this.clients.clear();
        }
      }
    })();
    this.reader = { stop, done: done.catch(() => undefined) };
  }
}

export function monitorRoutes(router: Router, hub: MonitorHub): void {
  router.add('GET', '/monitor', async (req) => {
    const res = req.res;
    let open = false;
    // Subscribing first refuses with 503 before any 200 goes out when the ring is taken.
    const ended = new AbortController();
    const unsubscribe = await hub.subscribe(
      (line) => {
        if (open) res.write(`${JSON.stringify(line)}\n`);
      },
      () => ended.abort(),
    );
    const done = AbortSignal.any([req.signal, ended.signal]);
    try {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' });
      res.flushHeaders();
      open = true;
      await new Promise<void>((resolve) => (done.aborted ? resolve() : done.addEventListener('abort', () => resolve(), { once: true })));
    } finally {
      unsubscribe();
      res.end();
    }
    return undefined;
  });
}
