// Turns the cilium_events ring buffer into decoded events: an async iterator, or a drain of what
// is already there. Reading a ring buffer consumes it, so one reader runs at a time; the ring is
// opened once and shared by the iterator and drains.
import type { DatapathLogger } from '../log.js';
import type { BpfMap } from '../libbpf/map.js';
import { RingBuffer } from '../libbpf/ringbuf.js';
import { decodeEvent } from '../maps/events.js';
import type { DatapathEvent } from '../types.js';

// The programs wake the reader only once 64 KiB are waiting (bpf/lib/notify.h), so the reader
// also collects on this interval; it bounds event latency and how long an abort or close waits.
const POLL_INTERVAL_MS = 100;

export class EventStream {
  private ring: RingBuffer | undefined;
  // Where records decoded by the ring's callback go: the iterator's queue or a drain's result.
  private sink: DatapathEvent[] = [];
  private reading = false;
  private inFlight: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly map: BpfMap,
    private readonly log: DatapathLogger,
  ) {}

  get active(): boolean {
    return this.reading;
  }

  /** Takes the ring now, so a second reader is refused at once, not at its first read. */
  start(signal?: AbortSignal): AsyncGenerator<DatapathEvent> {
    const queue: DatapathEvent[] = [];
    const ring = this.openRing();
    this.sink = queue;
    this.reading = true;
    return this.run(ring, queue, signal);
  }

  private async *run(ring: RingBuffer, queue: DatapathEvent[], signal?: AbortSignal): AsyncGenerator<DatapathEvent> {
    try {
      while (!this.stopped && signal?.aborted !== true) {
        if (queue.length === 0) {
          this.inFlight = ring.pollAsync(POLL_INTERVAL_MS);
          await this.inFlight.finally(() => (this.inFlight = undefined));
          // A poll that timed out delivered nothing: collect what arrived without a wakeup.
          if (queue.length === 0 && !this.stopped) ring.consume();
        }
        while (queue.length > 0 && !this.stopped) yield queue.shift()!;
      }
    } finally {
      this.reading = false;
    }
  }

  /** The events already in the ring, without waiting. */
  drain(): DatapathEvent[] {
    const events: DatapathEvent[] = [];
    const ring = this.openRing();
    this.sink = events;
    ring.consume();
    return events;
  }

  /** Ends the stream after the poll in flight and releases the ring. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.inFlight?.catch(() => 0);
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
