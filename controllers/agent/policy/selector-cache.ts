// Upstream's SelectorCache: every selector some rule uses, with the identities it selects, kept
// current as identities come and go, so resolving an endpoint never scans all identities.
import { SINGLE_STACK_RESERVED } from '../identity/reserved.js';
import type { LabelSet } from '../labels/labels.js';
import type { EndpointSelector } from './selector.js';

interface Entry {
  selector: EndpointSelector;
  selected: Set<number>;
  users: number;
}

export class SelectorCache {
  private readonly identities = new Map<number, LabelSet>();
  private readonly selectors = new Map<string, Entry>();

  constructor() {
    for (const r of SINGLE_STACK_RESERVED) this.identities.set(r.id, r.labels);
  }

  labelsOf(id: number): LabelSet | undefined {
    return this.identities.get(id);
  }

  identityIds(): number[] {
    return [...this.identities.keys()];
  }

  /** Adds or relabels an identity; returns the keys of the selectors whose selections changed. */
  upsertIdentity(id: number, labels: LabelSet): Set<string> {
    this.identities.set(id, labels);
    const changed = new Set<string>();
    for (const [key, e] of this.selectors) {
      const now = e.selector.matches(labels);
      if (now !== e.selected.has(id)) {
        if (now) e.selected.add(id);
        else e.selected.delete(id);
        changed.add(key);
      }
    }
    return changed;
  }

  removeIdentity(id: number): Set<string> {
    this.identities.delete(id);
    const changed = new Set<string>();
    for (const [key, e] of this.selectors) if (e.selected.delete(id)) changed.add(key);
    return changed;
  }

  /** Registers one more user of `sel` and computes its selections the first time. */
  addSelector(sel: EndpointSelector): void {
    const e = this.selectors.get(sel.key);
    if (e) {
      e.users++;
      return;
    }
    const selected = new Set<number>();
    for (const [id, labels] of this.identities) if (sel.matches(labels)) selected.add(id);
    this.selectors.set(sel.key, { selector: sel, selected, users: 1 });
  }

  removeSelector(sel: EndpointSelector): void {
    const e = this.selectors.get(sel.key);
    if (e && --e.users === 0) this.selectors.delete(sel.key);
  }

  /** The identities `sel` selects; it must have been added. */
  selections(sel: EndpointSelector): ReadonlySet<number> {
    const e = this.selectors.get(sel.key);
    if (!e) throw new Error(`selector ${sel.key} is not in the selector cache`);
    return e.selected;
  }

  /** Every selector with the identities it selects and its number of users (upstream's GET /policy/selectors). */
  entries(): { selector: string; identities: number[]; users: number }[] {
    return [...this.selectors.values()].map((e) => ({ selector: e.selector.key, identities: [...e.selected].sort((a, b) => a - b), users: e.users }));
  }

  get size(): number {
    return this.selectors.size;
  }
}
