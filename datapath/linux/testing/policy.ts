// Policies for datapath tests that were written when enforcement followed the entries: each
// direction enforces exactly when an entry names it. The Datapath API takes enforcement
// explicitly; tests that are not about enforcement spread this into syncPolicy.
import type { Enforcement, PolicyEntry } from '../../types.js';

export function enforcingWhereEntries(entries: readonly PolicyEntry[]): [readonly PolicyEntry[], Enforcement] {
  return [entries, { ingress: entries.some((e) => e.direction === 'ingress'), egress: entries.some((e) => e.direction === 'egress') }];
}
