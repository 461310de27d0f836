// Turns the cilium_events ring buffer into decoded events for any number of readers (the agent's
// monitor, Hubble, tests): reading a ring buffer consumes it, so one pump reads it while at least
// one reader is subscribed and hands every event to each reader's own queue. A reader that falls
// behind by more than its queue bound loses its oldest events and is told how many.
import type { DatapathLogger } from '../log.js';
import type { BpfMap } from '../libbpf/map.js';
import { RingBuffer } from '../libbpf/ringbuf.js';
import { decodeEvent } from '../maps/events.js';
import type { DatapathEvent } from '../types.js';

// The programs wake the reader only once 64 KiB are waiting (bpf/lib/notify.h), so the pump also
// collects on this interval; it bounds event latency (Hubble's observe goal is p99 <= 100 ms end to
// end) and how long an abort or close waits. An idle poll costs one thread-pool wakeup.
const POLL_INTERVAL_MS = 20;

/** Events a reader may have waiting before its oldest are dropped. */
export const DEFAULT_READER_QUEUE = 65_536;

export interface ReaderOptions {
  signal?: AbortSignal;
  /** Called with the number of events this reader lost to its full queue. */
  onLost?: (count: number) => void;
  maxQueued?: number;
}

interface Reader {
  queue: DatapathEvent[];
  max: number;
  onLost?: (count: number) => void;
  wake?: () => void;
}

export class EventStream {
  private ring: RingBuffer | undefined;
  private readonly readers = new Set<Reader>();
  // Where the ring's callback puts decoded records: the pump's batch or a drain's result.
  private sink: DatapathEvent[] = [];
  private pump: Promise<void> | undefined;
  private failure: Error | undefined;
  private stopped = false;

  constructor(
    private readonly map: BpfMap,
    private readonly log: DatapathLogger,
  ) {}

  /** Readers are subscribed, or the pump is still finishing its last poll for readers that left. */
  get active(): boolean {
    return this.readers.size > 0 || this.pump !== undefined;
  }

  /** A reader of every event from now on, until its signal aborts or the stream stops. */
  subscribe(opts: ReaderOptions = {}): AsyncGenerator<DatapathEvent> {
    const reader: Reader = { queue: [], max: opts.maxQueued ?? DEFAULT_READER_QUEUE, onLost: opts.onLost };
    this.openRing();
    this.readers.add(reader);
    this.ensurePump();
    return this.read(reader, opts.signal);
  }

  // A pump ending as a reader subscribes would leave that reader waiting: start another.
  private ensurePump(): void {
    if (this.pump !== undefined || this.failure !== undefined) return;
    this.pump = this.runPump()
      .catch((err: Error) => {
        this.failure = err;
        this.log.error('datapath event ring failed; its readers end', { error: err.message });
        for (const r of this.readers) r.wake?.();
      })
      .finally(() => {
        this.pump = undefined;
        if (this.readers.size > 0 && !this.stopped) this.ensurePump();
      });
  }

  private async *read(reader: Reader, signal?: AbortSignal): AsyncGenerator<DatapathEvent> {
    const onAbort = () => reader.wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!this.stopped && signal?.aborted !== true) {
        if (this.failure !== undefined) throw new Error(`datapath events: ${this.failure.message}`, { cause: this.failure });
        if (reader.queue.length === 0) {
          await new Promise<void>((resolve) => (reader.wake = resolve));
          reader.wake = undefined;
          continue;
        }
        yield reader.queue.shift()!;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.readers.delete(reader);
    }
  }

  private async runPump(): Promise<void> {
    const ring = this.openRing();
    while (!this.stopped && this.readers.size > 0) {
      const batch: DatapathEvent[] = [];
      this.sink = batch;
      await ring.pollAsync(POLL_INTERVAL_MS);
      // A poll that timed out delivered nothing: collect what arrived without a wakeup.
      if (batch.length === 0 && !this.stopped) ring.consume();
      if (batch.length > 0) this.deliver(batch);
    }
  }

  private deliver(batch: DatapathEvent[]): void {
    for (const reader of this.readers) {
      reader.queue.push(...batch);
      const over = reader.queue.length - reader.max;
      if (over > 0) {
        reader.queue.splice(0, over);
        reader.onLost?.(over);
      }
      reader.wake?.();
    }
  }

  /** The events already in the ring, without waiting; only while not `active`. */
  drain(): DatapathEvent[] {
    const events: DatapathEvent[] = [];
    const ring = this.openRing();
    this.sink = events;
    ring.consume();
    return events;
  }

  /** Ends every reader after the poll in flight and releases the ring. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.readers) r.wake?.();
    await this.pump?.catch(() => undefined);
    this.ring?.close();
    this.ring = undefined;
  }

  private openRing(): RingBuffer {
    this.ring ??= new RingBuffer(this.map, (record) => {
      try {
        this.sink.push(decodeEvent(record));
      } catch (err) {
        this.log.warn('skipping datapath event record', { error: (err as Error).message, bytes: record.length });
      }
    });
    return this.ring;
  }
}
