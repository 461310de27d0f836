// Counts the writes the datapath makes per map, so "a second identical sync writes nothing" is
// observable rather than assumed.
export interface MapWriteCount {
  updates: number;
  deletes: number;
}

export class MapWriteCounter {
  private readonly counts = new Map<string, MapWriteCount>();

  update(map: string, n = 1): void {
    if (n > 0) this.entry(map).updates += n;
  }

  delete(map: string, n = 1): void {
    if (n > 0) this.entry(map).deletes += n;
  }

  /** Every write so far, all maps together: what tells whether an operation wrote anything. */
  total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c.updates + c.deletes;
    return n;
  }

  /** Copy of the counts so far, by map name. */
  snapshot(): Record<string, MapWriteCount> {
    return Object.fromEntries([...this.counts].map(([name, c]) => [name, { ...c }]));
  }

  private entry(map: string): MapWriteCount {
    let c = this.counts.get(map);
    if (c === undefined) {
      c = { updates: 0, deletes: 0 };
      this.counts.set(map, c);
    }
    return c;
  }
}
