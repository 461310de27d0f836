// The observer's ring: the last `capacity` events (flows, and lost-event markers), each with a
// sequence number, so a reader that falls behind the writer knows how many it missed.
import type { HubbleEvent } from '../../hubble/flow-types.js';

export class FlowRing {
  private readonly slots: (HubbleEvent | undefined)[];
  private written = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`flow ring: capacity ${capacity} must be a positive integer`);
    this.slots = new Array<HubbleEvent | undefined>(capacity);
  }

  /** Sequence number the next write gets. */
  get head(): number {
    return this.written;
  }

  /** Sequence number of the oldest event held. */
  get oldest(): number {
    return Math.max(0, this.written - this.capacity);
  }

  get length(): number {
    return this.written - this.oldest;
  }

  write(ev: HubbleEvent): void {
    this.slots[this.written % this.capacity] = ev;
    this.written++;
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The event with this sequence number, while the ring still holds it. */
  at(seq: number): HubbleEvent | undefined {
    return seq >= this.oldest && seq < this.written ? this.slots[seq % this.capacity] : undefined;
  }

  /** Resolves at the next write, or when `signal` aborts. */
  nextWrite(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
