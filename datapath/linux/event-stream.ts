// Turns the cilium_events ring buffer into decoded events: an async iterator, or a drain of what
// is already there. Reading a ring buffer consumes it, so one reader runs at a time.
import type { Logger } from '../../controllers/runtime/log.js';
import type { BpfMap } from '../libbpf/map.js';
import { RingBuffer } from '../libbpf/ringbuf.js';
import { decodeEvent } from '../maps/events.js';
import type { DatapathEvent } from '../types.js';

// The programs wake the reader only once 64 KiB are waiting (bpf/lib/notify.h), so the reader
// also collects on this interval; it bounds event latency and how long an abort or close waits.
const POLL_INTERVAL_MS = 100;

export class EventStream {
  private ring: RingBuffer | undefined;
  private inFlight: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly map: BpfMap,
    private readonly log: Logger,
  ) {}

  get active(): boolean {
    return this.ring !== undefined;
  }

  /** Takes the ring now, so a second reader is refused at once, not at its first read. */
  start(signal?: AbortSignal): AsyncGenerator<DatapathEvent> {
    const queue: DatapathEvent[] = [];
    const ring = this.open(queue);
    this.ring = ring;
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
      ring.close();
      if (this.ring === ring) this.ring = undefined;
    }
  }

  /** The events already in the ring, without waiting. */
  drain(): DatapathEvent[] {
    const events: DatapathEvent[] = [];
    const ring = this.open(events);
    try {
      ring.consume();
    } finally {
      ring.close();
    }
    return events;
  }

  /** Ends the stream after the poll in flight and releases the ring. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.inFlight?.catch(() => 0);
    this.ring?.close();
    this.ring = undefined;
  }

  private open(into: DatapathEvent[]): RingBuffer {
    return new RingBuffer(this.map, (record) => {
      try {
        into.push(decodeEvent(record));
      } catch (err) {
        this.log.warn('skipping datapath event record', { error: (err as Error).message, bytes: record.length });
      }
    });
  }
}
