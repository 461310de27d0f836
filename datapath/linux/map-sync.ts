// Brings a map to a desired content by writing only the difference with what it holds.
import type { BpfMap } from '../libbpf/map.js';
import type { SyncResult } from '../types.js';
import type { MapWriteCounter } from './map-writes.js';

/** Desired entries keyed by the hex of the encoded key. */
export type MapContents = ReadonlyMap<string, { key: Buffer; value: Buffer }>;

/**
 * Additions and updates go first, removals last, so an entry that is being replaced by a more
 * specific one never leaves a moment in which neither is present. `mapName` labels the counts.
 */
export function syncMap(map: BpfMap, mapName: string, desired: MapContents, writes: MapWriteCounter): SyncResult {
  const current = new Map<string, { key: Buffer; value: Buffer }>();
  for (const [key, value] of map.entries()) current.set(key.toString('hex'), { key, value });

  const result: SyncResult = { added: 0, updated: 0, removed: 0 };
  for (const [hex, want] of desired) {
    const have = current.get(hex);
    if (have === undefined) {
      map.update(want.key, want.value);
      result.added++;
    } else if (!have.value.equals(want.value)) {
      map.update(want.key, want.value);
      result.updated++;
    }
  }
  for (const [hex, have] of current) {
    if (desired.has(hex)) continue;
    map.delete(have.key);
    result.removed++;
  }
  writes.update(mapName, result.added + result.updated);
  writes.delete(mapName, result.removed);
  return result;
}
