// One endpoint's policy from the repository: the rules selecting its identity, their peers
// expanded through the selector cache, named ports resolved, and the enforcement of each direction
// as upstream's computePolicyEnforcementAndRules decides it. The result goes to Datapath.syncPolicy.
import type { Enforcement, PolicyEntry } from '../../../datapath/types.js';
import { IDENTITY_HOST } from '../identity/reserved.js';
import { type LabelSet, SOURCE_RESERVED } from '../labels/labels.js';

import type { PolicyRepository } from './repository.js';
import type { Direction, PolicyRef, PortSpec, RuleSection, Unsupported } from './rule.js';

/** Upstream --enable-policy. */
export type PolicyEnforcementMode = 'default' | 'always' | 'never';

export interface NamedPort {
  name: string;
  port: number;
  /** 6, 17 or 132. */
  protocol: number;
}

export interface ResolveOptions {
  mode?: PolicyEnforcementMode;
  /**
   * Upstream allow-localhost=always (what `auto` becomes in Kubernetes): the node itself may always
   * reach its endpoints once ingress enforces. Default true.
   */
  allowLocalhost?: boolean;
  /**
   * Named ports of every pod in the cluster: egress named ports resolve against the destination
   * pods, as upstream's global named-port map; a name with two different ports resolves to none.
   */
  clusterNamedPorts?: readonly NamedPort[];
}

export interface EndpointInput {
  identity: number;
  /** The identity's labels; taken from the selector cache when omitted. */
  labels?: LabelSet;
  /** The endpoint's own container ports: ingress named ports resolve against them. */
  namedPorts?: readonly NamedPort[];
}

export interface ResolvedPolicy {
  entries: PolicyEntry[];
  enforcement: Enforcement;
  revision: number;
  /** The policies whose rules select the endpoint. */
  policies: PolicyRef[];
  /** Parts of those rules that are not enforced (they open nothing). */
  unsupported: (Unsupported & { policy: PolicyRef })[];
}

function resolveNamed(spec: PortSpec, candidates: readonly NamedPort[]): PortSpec | undefined {
  const found = candidates.filter((p) => p.name === spec.name && (spec.protocol === 0 || p.protocol === spec.protocol));
  const ports = new Set(found.map((p) => p.port));
  if (ports.size !== 1) return undefined;
  return { protocol: spec.protocol, port: [...ports][0] as number };
}

export function resolvePolicy(repo: PolicyRepository, ep: EndpointInput, opts: ResolveOptions = {}): ResolvedPolicy {
  const mode = opts.mode ?? 'default';
  const revision = repo.revision;
  const labels = ep.labels ?? repo.selectorCache.labelsOf(ep.identity);
  if (!labels) throw new Error(`identity ${ep.identity} is unknown to the selector cache and no labels were given`);
  // The host endpoint is the host firewall's (nodeSelector), which we do not enforce.
  const rules = mode === 'never' || labels.has('host', SOURCE_RESERVED) ? [] : repo.rulesSelecting(labels);
  // An endpoint still without labels (reserved:init) is default-deny both ways, as upstream.
  const always = (mode === 'always' && !labels.has('host', SOURCE_RESERVED)) || labels.has('init', SOURCE_RESERVED);

  const enforcement: Enforcement = { ingress: always, egress: always };
  const defaultDeny: Enforcement = { ...enforcement };
  for (const r of rules) {
    for (const d of ['ingress', 'egress'] as const) {
      if (!r.hasDirection[d]) continue;
      enforcement[d] = true;
      if (r.defaultDeny[d]) defaultDeny[d] = true;
    }
  }

  const entries = new Map<string, PolicyEntry>();
  const add = (e: PolicyEntry): void => {
    const key = `${e.identity}/${e.direction}/${e.protocol}/${e.port}/${e.endPort ?? ''}/${e.deny}`;
    if (!entries.has(key)) entries.set(key, e);
  };
  const sectionPorts = (s: RuleSection): PortSpec[] => {
    if (s.ports === undefined) return [{ protocol: 0, port: 0 }];
    const out: PortSpec[] = [];
    for (const p of s.ports) {
      if (p.name === undefined) out.push(p);
      else {
        const resolved = resolveNamed(p, s.direction === 'ingress' ? (ep.namedPorts ?? []) : (opts.clusterNamedPorts ?? []));
        if (resolved) out.push(resolved);
      }
    }
    return out;
  };
  for (const r of rules) {
    for (const s of r.sections) {
      const ports = sectionPorts(s);
      if (ports.length === 0 || s.peers.length === 0) continue;
      const ids = new Set<number>();
      for (const peer of s.peers) {
        if (peer.isWildcard) ids.add(0);
        else for (const id of repo.selectorCache.selections(peer)) ids.add(id);
      }
      for (const identity of ids) {
        for (const p of ports) {
          const e: PolicyEntry = { identity, direction: s.direction, protocol: p.protocol, port: p.port, deny: s.deny, cookie: r.cookie };
          if (p.endPort !== undefined) e.endPort = p.endPort;
          add(e);
        }
      }
    }
  }
  // A direction enforced only by rules with enableDefaultDeny false allows what no deny forbids.
  for (const d of ['ingress', 'egress'] as const satisfies Direction[]) {
    if (enforcement[d] && !defaultDeny[d]) add({ identity: 0, direction: d, protocol: 0, port: 0, deny: false });
  }
  if (enforcement.ingress && (opts.allowLocalhost ?? true)) add({ identity: IDENTITY_HOST, direction: 'ingress', protocol: 0, port: 0, deny: false });

  const policies = new Map<string, PolicyRef>();
  for (const r of rules) policies.set(`${r.policy.kind}/${r.policy.namespace}/${r.policy.name}`, r.policy);
  return {
    entries: [...entries.values()],
    enforcement,
    revision,
    policies: [...policies.values()],
    unsupported: rules.flatMap((r) => r.unsupported.map((u) => ({ ...u, policy: r.policy }))),
  };
}
