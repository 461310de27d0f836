// The order in which a policy map moves from its old contents to new ones. Programs read the map
// between any two writes, so every state on the way must be no more permissive than the old and
// the new policy together, and the map must not overflow its max_entries on the way.
import { decodePolicyValue } from '../maps/policy.js';
import type { MapContents, MapDiff, MapWrite } from './map-sync.js';

export interface PolicyWritePlan {
  writes: MapWrite[];
  /** Most entries the map holds at any point of `writes`. */
  peak: number;
}

function isDeny(value: Buffer | undefined): boolean {
  return value !== undefined && decodePolicyValue(value).deny;
}

/**
 * New denies first and removed allows next, so nothing old that is going away can still allow
 * while new restrictions are missing; then changed entries, new allows, and removed denies last.
 * Until that last step the map holds every new deny, and the only allows in it are old ones
 * (steps 1-2) or new ones (steps 3-5), so no packet passes that both policies would drop.
 * `current` is what the map holds now (the diff's base).
 */
export function safePolicyOrder(d: MapDiff, current: MapContents): PolicyWritePlan {
  const newDenies = d.adds.filter((w) => isDeny(w.value));
  const newAllows = d.adds.filter((w) => !isDeny(w.value));
  const removedDenies = d.removes.filter((w) => isDeny(current.get(w.hex)?.value));
  const removedAllows = d.removes.filter((w) => !isDeny(current.get(w.hex)?.value));
  const afterDenies = current.size + newDenies.length;
  const afterAllows = afterDenies - removedAllows.length + newAllows.length;
  return {
    writes: [...newDenies, ...removedAllows, ...d.updates, ...newAllows, ...removedDenies],
    peak: Math.max(afterDenies, afterAllows),
  };
}

/**
 * Removals first, so the map never holds more than the larger of old and new. Only safe while the
 * endpoint is detached from its policy (every packet drops with 203).
 */
export function compactPolicyOrder(d: MapDiff): MapWrite[] {
  return [...d.removes, ...d.updates, ...d.adds];
}
