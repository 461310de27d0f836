// The policy repository: parsed rules keyed by policy, the selector cache their peers use, the CIDR
// identities their prefixes need, and a revision bumped on every policy change (starting at 1, as
// upstream's Repository). Every change answers which identities' policies it can alter, so the
// loop recomputes only the endpoints with those identities.
import { createHash } from 'node:crypto';
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy } from '../../../crds/gen/index.js';
import type { IPCacheEntry } from '../../../datapath/types.js';
import type { LabelSet } from '../labels/labels.js';
import { CidrIdentityAllocator } from './cidr-identities.js';
import { type KubeNetworkPolicy, parseCiliumPolicy, parseNetworkPolicy, type ParseOptions } from './parse.js';
import { type ParsedPolicy, type PolicyRef, policyRefKey, type Rule } from './rule.js';
import type { EndpointSelector } from './selector.js';
import { SelectorCache } from './selector-cache.js';

export interface PolicyChange {
  revision: number;
  /** Identities whose resolved policy may differ now. */
  affected: Set<number>;
}

export class PolicyRepository {
  readonly selectorCache = new SelectorCache();
  private readonly cidrs = new CidrIdentityAllocator();
  private readonly policies = new Map<string, ParsedPolicy>();
  private readonly byCookie = new Map<number, Rule>();
  private rev = 1;

  constructor(readonly options: ParseOptions = {}) {}

  get revision(): number {
    return this.rev;
  }

  /** Parses and stores a CNP, CCNP or (with kind NetworkPolicy) KNP; a parse error changes nothing. */
  upsert(obj: CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | (KubeNetworkPolicy & { kind: 'NetworkPolicy' })): PolicyChange {
    return this.replace(obj.kind === 'NetworkPolicy' ? parseNetworkPolicy(obj, this.options) : parseCiliumPolicy(obj, this.options));
  }

  replace(parsed: ParsedPolicy): PolicyChange {
    const key = policyRefKey(parsed.ref);
    return this.swap(key, this.policies.get(key), parsed);
  }

  delete(ref: PolicyRef): PolicyChange {
    const key = policyRefKey(ref);
    const old = this.policies.get(key);
    if (!old) return { revision: this.rev, affected: new Set() };
    return this.swap(key, old, undefined);
  }

  get(ref: PolicyRef): ParsedPolicy | undefined {
    return this.policies.get(policyRefKey(ref));
  }

  rules(): Rule[] {
    return [...this.policies.values()].flatMap((p) => p.rules);
  }

  /** Rules whose subject selects an identity with these labels. */
  rulesSelecting(labels: LabelSet): Rule[] {
    return this.rules().filter((r) => r.subject?.matches(labels) === true);
  }

  /** A pod identity (or any other) appears or changes labels. */
  upsertIdentity(id: number, labels: LabelSet): PolicyChange {
    const changed = this.selectorCache.upsertIdentity(id, labels);
    const affected = this.usersOf(changed);
    affected.add(id);
    return { revision: this.rev, affected };
  }

  removeIdentity(id: number): PolicyChange {
    const affected = this.usersOf(this.selectorCache.removeIdentity(id));
    affected.add(id);
    return { revision: this.rev, affected };
  }

  /** The rule a map entry's or a datapath event's cookie names. */
  ruleOfCookie(cookie: number): Rule | undefined {
    return this.byCookie.get(cookie);
  }

  // A rule's cookie comes from its policy and path, so an agent restart (or any other agent)
  // writes the same cookie for the same rule: restored maps need no rewrite, and events name the
  // rule consistently. A collision moves on to the next free value.
  private allocateCookie(rule: Rule): number {
    let cookie = ruleCookie(rule);
    while (cookie === 0 || this.byCookie.has(cookie)) cookie = (cookie + 1) >>> 0;
    this.byCookie.set(cookie, rule);
    return cookie;
  }

  /** prefix → CIDR identity rows for the ipcache. */
  ipcacheEntries(): IPCacheEntry[] {
    return this.cidrs.ipcacheEntries();
  }

  private swap(key: string, old: ParsedPolicy | undefined, next: ParsedPolicy | undefined): PolicyChange {
    const changed = new Set<string>();
    const addAll = (s: Set<string>): void => s.forEach((k) => changed.add(k));
    // The endpoints the old version selected, read before its selectors leave the cache.
    const affected = this.subjectsOf(old?.rules ?? []);
    for (const prefix of next?.prefixes ?? []) {
      const { id, labels } = this.cidrs.acquire(prefix);
      if (labels) addAll(this.selectorCache.upsertIdentity(id, labels));
    }
    for (const sel of selectorsOf(next)) this.selectorCache.addSelector(sel);
    for (const sel of selectorsOf(old)) this.selectorCache.removeSelector(sel);
    for (const prefix of old?.prefixes ?? []) {
      const released = this.cidrs.release(prefix);
      if (released !== undefined) addAll(this.selectorCache.removeIdentity(released));
    }
    // A rule keeps its cookie across updates of its policy (same path), so flows stay attributed.
    const kept = new Map((old?.rules ?? []).map((r) => [r.path, r.cookie]));
    for (const r of old?.rules ?? []) this.byCookie.delete(r.cookie);
    for (const r of next?.rules ?? []) {
      const cookie = kept.get(r.path);
      if (cookie === undefined) r.cookie = this.allocateCookie(r);
      else {
        r.cookie = cookie;
        this.byCookie.set(cookie, r);
      }
    }
    if (next) this.policies.set(key, next);
    else this.policies.delete(key);
    this.rev++;

    for (const id of this.subjectsOf(next?.rules ?? [])) affected.add(id);
    for (const id of this.usersOf(changed)) affected.add(id);
    return { revision: this.rev, affected };
  }

  // Identities selected by these rules' subjects (each subject is a selector in the cache).
  private subjectsOf(rules: readonly Rule[]): Set<number> {
    const out = new Set<number>();
    for (const r of rules) if (r.subject) for (const id of this.selectorCache.selections(r.subject)) out.add(id);
    return out;
  }

  // Identities selected by rules that use one of these selectors as a peer.
  private usersOf(selectorKeys: ReadonlySet<string>): Set<number> {
    if (selectorKeys.size === 0) return new Set();
    return this.subjectsOf(this.rules().filter((r) => r.sections.some((s) => s.peers.some((p) => selectorKeys.has(p.key)))));
  }
}

/** Every selector a policy needs cached: its rules' subjects and their peers. */
function selectorsOf(p: ParsedPolicy | undefined): EndpointSelector[] {
  return (p?.rules ?? []).flatMap((r) => [...(r.subject ? [r.subject] : []), ...r.sections.flatMap((s) => s.peers)]);
}

/** The cookie a rule asks for: 32 bits of a hash of its policy and its path in it; 0 is none. */
export function ruleCookie(rule: Pick<Rule, 'policy' | 'path'>): number {
  return createHash('sha256').update(`${policyRefKey(rule.policy)}/${rule.path}`).digest().readUInt32LE(0);
}
