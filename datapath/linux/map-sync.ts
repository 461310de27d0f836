// A map together with what this process believes it holds (its shadow), so a sync diffs desired
// state in memory instead of reading the whole map from the kernel each time. The shadow is
// filled by one full read, changed only by writes that succeeded, and read again from the
// kernel after any failed write. What the process meant the map to hold is kept apart from the
// shadow: a failed write does not forget it, and resync() writes it again, repairing both failed
// writes and what others changed behind our back.
import type { BpfMap } from '../libbpf/map.js';
import type { SyncResult } from '../types.js';
import { DatapathError } from './errors.js';
import type { MapWriteCounter } from './map-writes.js';

export interface MapEntry {
  key: Buffer;
  value: Buffer;
}

/** Entries keyed by the hex of the encoded key. */
export type MapContents = ReadonlyMap<string, MapEntry>;

/** One write: an update when `value` is set, a delete otherwise. */
export interface MapWrite {
  hex: string;
  key: Buffer;
  value?: Buffer;
}

/** What turns the shadow into the desired contents. */
export interface MapDiff {
  adds: Array<MapWrite & MapEntry>;
  updates: Array<MapWrite & MapEntry>;
  removes: MapWrite[];
}

/** What turns `current` into `desired`. */
export function diffContents(current: MapContents, desired: MapContents): MapDiff {
  const out: MapDiff = { adds: [], updates: [], removes: [] };
  for (const [hex, want] of desired) {
    const have = current.get(hex);
    if (have === undefined) out.adds.push({ hex, ...want });
    else if (!have.value.equals(want.value)) out.updates.push({ hex, ...want });
  }
  for (const [hex, have] of current) if (!desired.has(hex)) out.removes.push({ hex, key: have.key });
  return out;
}

/** The writes that carry a map from `current` along `d`, in the order they are to be made. */
export type WriteOrder = (d: MapDiff, current: MapContents, maxEntries: number) => MapWrite[];

/**
 * Additions and updates first, removals last, so an entry being replaced by a more specific one
 * never leaves a moment in which neither is present.
 */
const addsFirst: WriteOrder = (d) => [...d.adds, ...d.updates, ...d.removes];

export class ShadowedMap {
  private shadow = new Map<string, MapEntry>();
  private wanted = new Map<string, MapEntry>();

  /**
   * Reads the map once; `name` labels write counts and errors (policy maps by pin name); `order`
   * sequences the writes of sync() and resync().
   */
  constructor(
    readonly map: BpfMap,
    readonly name: string,
    private readonly writes: MapWriteCounter,
    private readonly order: WriteOrder = addsFirst,
  ) {
    this.reload();
    this.wanted = new Map(this.shadow);
  }

  /** What the kernel holds, as far as this process knows. */
  get contents(): MapContents {
    return this.shadow;
  }

  /** What this process last meant the map to hold, whether or not the writes got there. */
  get intended(): MapContents {
    return this.wanted;
  }

  get maxEntries(): number {
    return this.map.maxEntries;
  }

  /** Replaces the shadow with what the kernel holds. */
  reload(): void {
    const fresh = new Map<string, MapEntry>();
    for (const [key, value] of this.map.lookupBatch()) fresh.set(key.toString('hex'), { key, value });
    this.shadow = fresh;
  }

  diff(desired: MapContents): MapDiff {
    return diffContents(this.shadow, desired);
  }

  sync(desired: MapContents): SyncResult {
    return this.write(this.order(this.diff(desired), this.shadow, this.maxEntries), desired);
  }

  /** Sets one entry unless the shadow says it already holds `value`; returns whether it wrote. */
  set(key: Buffer, value: Buffer): boolean {
    const have = this.shadow.get(key.toString('hex'));
    if (have?.value.equals(value)) return false;
    this.write([{ hex: key.toString('hex'), key, value }]);
    return true;
  }

  /** Deletes one entry the shadow knows; returns whether it wrote. */
  remove(key: Buffer): boolean {
    const hex = key.toString('hex');
    if (!this.shadow.has(hex)) return false;
    this.write([{ hex, key }]);
    return true;
  }

  /**
   * Writes in the given order, keeping the shadow and the write counts in step with each write
   * that succeeds. Before the first write, `desired` (the whole contents the writes lead to) or
   * else the writes themselves become what the map is meant to hold. On a failure the shadow is
   * read again from the kernel (the map is in a state between old and new) and the error names
   * the map and how far the writes got.
   */
  write(writes: readonly MapWrite[], desired?: MapContents): SyncResult {
    if (desired !== undefined) {
      this.wanted = new Map(desired);
    } else {
      for (const w of writes) {
        if (w.value === undefined) this.wanted.delete(w.hex);
        else this.wanted.set(w.hex, { key: w.key, value: w.value });
      }
    }
    const result: SyncResult = { added: 0, updated: 0, removed: 0 };
    let done = 0;
    try {
      for (const w of writes) {
        const had = this.shadow.has(w.hex);
        if (w.value === undefined) {
          // Someone else removed it already: nothing was written.
          if (this.map.delete(w.key)) {
            this.writes.delete(this.name);
            result.removed++;
          }
          this.shadow.delete(w.hex);
        } else {
          this.map.update(w.key, w.value);
          this.shadow.set(w.hex, { key: w.key, value: w.value });
          this.writes.update(this.name);
          if (had) result.updated++;
          else result.added++;
        }
        done++;
      }
    } catch (err) {
      this.reload();
      throw new DatapathError(`map ${this.name}`, `write ${done + 1} of ${writes.length} failed (${(err as Error).message}); shadow re-read from the kernel`, { cause: err });
    }
    return result;
  }

  /** Reads the kernel's contents and writes what this process means the map to hold where they differ. */
  resync(): SyncResult {
    this.reload();
    return this.write(this.order(this.diff(this.wanted), this.shadow, this.maxEntries), this.wanted);
  }
}
