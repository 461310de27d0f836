// Local-scope CIDR identities for the prefixes policies name (each CIDR and each except hole), held
// while some policy uses the prefix. The lowest free number is handed out, so the same sequence of
// policy changes always yields the same identities. They are node-local and go to the ipcache only.
import { parseIPv4Prefix } from '../../../datapath/maps/ipv4.js';
import type { IPCacheEntry } from '../../../datapath/types.js';
import type { LabelSet } from '../labels/labels.js';
import { cidrLabels, LOCAL_IDENTITY_FLAG } from './identities.js';

const MAX_LOCAL = 0xffffff;

export class CidrIdentityAllocator {
  private readonly byPrefix = new Map<string, { id: number; users: number }>();
  private readonly free: number[] = [];
  private next = 1;

  /** One more user of `prefix`; returns the identity and, when it is new, its labels. */
  acquire(prefix: string): { id: number; labels?: LabelSet } {
    const held = this.byPrefix.get(prefix);
    if (held) {
      held.users++;
      return { id: held.id };
    }
    let n: number;
    if (this.free.length > 0) {
      this.free.sort((a, b) => a - b);
      n = this.free.shift() as number;
    } else {
      if (this.next > MAX_LOCAL) throw new RangeError(`no free local CIDR identity for ${prefix}`);
      n = this.next++;
    }
    const id = (LOCAL_IDENTITY_FLAG | n) >>> 0;
    this.byPrefix.set(prefix, { id, users: 1 });
    return { id, labels: cidrLabels(parseIPv4Prefix(prefix)) };
  }

  /** One user fewer; returns the identity when it is now unused and released. */
  release(prefix: string): number | undefined {
    const held = this.byPrefix.get(prefix);
    if (!held || --held.users > 0) return undefined;
    this.byPrefix.delete(prefix);
    this.free.push(held.id & MAX_LOCAL);
    return held.id;
  }

  /** The ipcache rows: each prefix in use and its identity, sorted by prefix. */
  ipcacheEntries(): IPCacheEntry[] {
    return [...this.byPrefix.entries()].map(([prefix, h]) => ({ prefix, identity: h.id })).sort((a, b) => a.prefix.localeCompare(b.prefix));
  }
}
