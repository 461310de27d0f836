// `cilium map list` and `cilium map get <name>` (cilium-dbg/cmd/map_list.go, map_get.go): the
// agent's view of the maps it manages and the cache of writes it keeps for them.
import path from 'node:path';
import type { BPFMapListModel, BPFMapModel } from '../models.js';
import { tabwrite } from '../text/tabwriter.js';

export function formatMapList(list: BPFMapListModel): string {
  let text = 'Name\tNum entries\tNum errors\tCache enabled\n';
  for (const m of list.maps ?? []) {
    const cached = m.cache !== undefined && m.cache !== null;
    const entries = (m.cache ?? []).filter((e) => e !== null);
    const errors = entries.filter((e) => (e['last-error'] ?? '') !== '').length;
    text += `${path.basename(m.path ?? '')}\t${cached ? entries.length : 'unknown'}\t${errors}\t${cached}\n`;
  }
  return tabwrite(text, { minwidth: 5, padding: 3 });
}

export function formatMapEntries(m: BPFMapModel): string {
  if (m.cache === undefined || m.cache === null) return 'Cache is disabled\n\n';
  if (m.cache.length === 0) return 'Cache is empty\n\n';
  let text = 'Key\tValue\tState\tError\n';
  for (const e of m.cache) {
    if (e !== null) text += `${e.key ?? ''}\t${e.value ?? ''}\t${e['desired-action'] ?? ''}\t${e['last-error'] ?? ''}\n`;
  }
  return tabwrite(text, { minwidth: 5, padding: 3 });
}

/** `map list --verbose`: every map's cache under a "## Map:" heading. */
export function formatMapListVerbose(list: BPFMapListModel): string {
  return (list.maps ?? []).map((m) => `## Map: ${path.basename(m.path ?? '')}\n${formatMapEntries(m)}\n`).join('');
}
