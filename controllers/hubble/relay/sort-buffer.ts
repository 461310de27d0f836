// The relay's per-request sort buffer (upstream pkg/hubble/relay/queue): responses of all nodes
// wait in a min-heap by time; the oldest leaves when the buffer is full, and the ones older than
// the sorting window leave when time passes, so nodes' streams come out merged in time order.
import { type Timestamp, timestampMs } from '../flow-types.js';

export interface Timed {
  time: Timestamp | null;
}

// A response without a time sorts first, as upstream's queue treats a nil timestamp.
const timeOf = (r: Timed): number => (r.time === null ? -Infinity : timestampMs(r.time));

export class SortBuffer<T extends Timed> {
  private readonly heap: { at: number; seq: number; item: T }[] = [];
  // Equal times leave in arrival order.
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(item: T): void {
    const h = this.heap;
    h.push({ at: timeOf(item), seq: this.seq++, item });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** The oldest response, or undefined when empty. */
  pop(): T | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < h.length && this.less(l, min)) min = l;
        if (r < h.length && this.less(r, min)) min = r;
        if (min === i) break;
        this.swap(i, min);
        i = min;
      }
    }
    return top.item;
  }

  /** Pops, oldest first, every response older than `ms` (epoch milliseconds). */
  popOlderThan(ms: number): T[] {
    const out: T[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at < ms) out.push(this.pop()!);
    return out;
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    [h[a], h[b]] = [h[b]!, h[a]!];
  }
}
