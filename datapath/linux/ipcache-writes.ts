// The order in which cilium_ipcache_v2 moves from its old contents to new ones. Policy is by the
// peer's identity, so an intermediate state is safe exactly when every address resolves to the
// identity the old or the new contents give it: then every packet gets the verdict of the old or
// the new ipcache, never one of a third identity (a shorter prefix's, or world's) that policy may
// allow more broadly.
//
// Additions and updates go longest prefix first: when an address meets a written prefix, every
// longer new prefix covering it is written too, so that prefix is its new match; when it meets an
// old one, no new longer prefix covers it yet, and all old prefixes are still there, so that is its
// old match. Removals go shortest prefix first: an address that meets a prefix about to go has
// lost no longer old prefix yet (its old match), and one that meets a new prefix has lost every
// shorter old one and so every old one that could beat it (its new match).
//
// Removing first would keep the map smaller but lets an address fall through to a shorter prefix
// or world on the way, which no order prevents; so when old plus added exceeds the map's capacity
// the sync is refused before anything is written.
import { IPCACHE_KEY_LAYOUT } from '../maps/ipcache.js';
import { DatapathError } from './errors.js';
import type { MapContents, MapDiff, MapWrite } from './map-sync.js';

function prefixLen(w: MapWrite): number {
  return w.key.readUInt32LE(IPCACHE_KEY_LAYOUT.members.prefixlen.offset);
}

/** The writes from `current` (what the map holds) along `d`, in an order safe for policy. */
export function ipcacheWriteOrder(d: MapDiff, current: MapContents, maxEntries: number): MapWrite[] {
  const peak = current.size + d.adds.length;
  if (peak > maxEntries) {
    throw new DatapathError(
      'cilium_ipcache_v2',
      `holds ${current.size} prefixes and would need room for ${d.adds.length} new ones before removing ${d.removes.length} old ones (${peak} > ${maxEntries} entries); ` +
        'removing first could resolve peers to a third identity, so sync in two steps (remove, then add)',
    );
  }
  const writes: MapWrite[] = [...d.adds, ...d.updates].sort((a, b) => prefixLen(b) - prefixLen(a));
  const removes = [...d.removes].sort((a, b) => prefixLen(a) - prefixLen(b));
  return [...writes, ...removes];
}
