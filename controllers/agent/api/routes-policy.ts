// /identity, /policy, /policy/selectors and /ip: what `cilium-dbg identity list|get`, `policy get`,
// `policy selectors` and `ip list` read.
import { parseIPv4Prefix, prefixContains, type IPv4Prefix } from '../../../datapath/maps/ipv4.js';
import { readIpcache } from '../../../datapath/linux/pinned-maps.js';
import { identityId, identityLabels } from '../identity/cilium-identity.js';
import { SINGLE_STACK_RESERVED } from '../identity/reserved.js';
import { LOCAL_IDENTITY_FLAG } from '../policy/identities.js';
import type { PolicyKind, PolicyRef } from '../policy/rule.js';
import type { AgentApiDeps } from './deps.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { hasLabels, requestedLabels } from './labels-filter.js';
import { identityModel, type IdentityModel } from './models.js';
import type { Router } from './router.js';

/** Every identity the agent knows: reserved, the cluster's CiliumIdentities, and its own CIDR identities. */
export function knownIdentities(deps: AgentApiDeps): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of SINGLE_STACK_RESERVED) out.set(r.id, [...r.labels.strings]);
  for (const ci of deps.resources.identities.store.list()) {
    const id = identityId(ci);
    if (id !== undefined) out.set(id, [...identityLabels(ci).strings]);
  }
  const cache = deps.repo.selectorCache;
  for (const id of cache.identityIds()) if (!out.has(id)) out.set(id, [...(cache.labelsOf(id)?.strings ?? [])]);
  return out;
}

function sortedModels(ids: Map<number, string[]>): IdentityModel[] {
  return [...ids].sort(([a], [b]) => a - b).map(([id, labels]) => identityModel(id, labels));
}

interface PolicySource {
  kind: PolicyKind;
  metadata?: { namespace?: string; name?: string };
  spec?: unknown;
  specs?: unknown[];
}

/** The rules of the repository as upstream's `policy get` prints them: each rule's spec with its labels. */
export function policyText(deps: AgentApiDeps): string {
  const objects: PolicySource[] = [
    ...deps.resources.cnp.store.list().map((o) => ({ ...o, kind: 'CiliumNetworkPolicy' as const })),
    ...deps.resources.ccnp.store.list().map((o) => ({ ...o, kind: 'CiliumClusterwideNetworkPolicy' as const })),
    ...deps.resources.knp.store.list().map((o) => ({ ...o, kind: 'NetworkPolicy' as const })),
  ];
  const rules: unknown[] = [];
  for (const obj of objects) {
    const ref: PolicyRef = { kind: obj.kind, namespace: obj.kind === 'CiliumClusterwideNetworkPolicy' ? '' : (obj.metadata?.namespace ?? ''), name: obj.metadata?.name ?? '' };
    for (const rule of deps.repo.get(ref)?.rules ?? []) {
      const m = /^specs\[(\d+)\]$/.exec(rule.path);
      const spec = m ? obj.specs?.[Number(m[1])] : obj.spec;
      rules.push({ ...(typeof spec === 'object' && spec !== null ? spec : {}), labels: rule.labels.labels().map((l) => ({ key: l.key, value: l.value, source: l.source })) });
    }
  }
  return JSON.stringify(rules, null, 2);
}

interface IPListEntry {
  cidr: string;
  identity: number;
  hostIP?: string;
  encryptKey: number;
  metadata: { source: string; namespace?: string; name?: string };
}

/** The datapath's ipcache as upstream's IPListEntry list, each named after the pod that has the address. */
export function ipList(deps: AgentApiDeps, filter?: IPv4Prefix): IPListEntry[] {
  const inFilter = (prefix: string) => filter === undefined || prefixContains(filter, parseIPv4Prefix(prefix));
  const local = new Map(deps.endpoints.list().map((e) => [`${e.ipv4}/32`, e]));
  const remote = new Map<string, { namespace?: string; name?: string }>();
  for (const cep of deps.ciliumEndpoints.store.list()) {
    for (const a of cep.status?.networking?.addressing ?? []) if (a.ipv4) remote.set(`${a.ipv4}/32`, { namespace: cep.metadata.namespace, name: cep.metadata.name });
  }
  return readIpcache(deps.datapath.bpffsDir)
    .map(({ prefix, info }) => ({ cidr: prefix, info }))
    .filter((e) => inFilter(e.cidr))
    .sort((a, b) => a.cidr.localeCompare(b.cidr, 'en', { numeric: true }))
    .map(({ cidr, info }) => {
      const ep = local.get(cidr);
      const pod = ep ? { namespace: ep.namespace, name: ep.podName } : remote.get(cidr);
      const source = ep ? 'local' : (info.identity & LOCAL_IDENTITY_FLAG) !== 0 ? 'generated' : 'custom-resource';
      return {
        cidr,
        identity: info.identity,
        ...(info.tunnelEndpoint !== '0.0.0.0' ? { hostIP: info.tunnelEndpoint } : {}),
        encryptKey: info.encryptKey,
        metadata: { source, ...(pod ?? {}) },
      };
    });
}

export function policyRoutes(router: Router, deps: AgentApiDeps): void {
  router.add('GET', '/identity', (req) => {
    const wanted = requestedLabels(req);
    const all = knownIdentities(deps);
    const hits = new Map([...all].filter(([, labels]) => hasLabels(labels, wanted)));
    if (hits.size === 0 && wanted.length > 0) throw new ApiError(404, 'no identity has the labels given');
    return { status: 200, body: sortedModels(hits) };
  });

  router.add('GET', '/identity/endpoints', () => {
    const byId = new Map<number, { labels: string[]; refCount: number }>();
    for (const ep of deps.endpoints.list()) {
      const e = byId.get(ep.identity) ?? { labels: ep.identityLabels, refCount: 0 };
      e.refCount++;
      byId.set(ep.identity, e);
    }
    return { status: 200, body: [...byId].sort(([a], [b]) => a - b).map(([id, e]) => ({ identity: identityModel(id, e.labels), refCount: e.refCount })) };
  });

  router.add('GET', '/identity/{id}', (req) => {
    const text = req.params.id as string;
    if (!/^\d{1,10}$/.test(text)) throw badRequest('identity id', `${JSON.stringify(text)} is not a numeric identity`);
    // Identity 0 is upstream's wildcard (`ANY` in cilium-dbg bpf policy get), labelled reserved:unknown.
    const labels = Number(text) === 0 ? ['reserved:unknown'] : knownIdentities(deps).get(Number(text));
    if (labels === undefined) throw notFound(`identity ${text}`);
    return { status: 200, body: identityModel(Number(text), labels) };
  });

  router.add('GET', '/policy', () => ({ status: 200, body: { revision: deps.repo.revision, policy: policyText(deps) } }));
  router.add('GET', '/policy/selectors', () => ({ status: 200, body: deps.repo.selectorCache.entries() }));

  router.add('GET', '/ip', (req) => {
    const cidr = req.query.get('cidr') ?? undefined;
    let filter: IPv4Prefix | undefined;
    try {
      filter = cidr === undefined ? undefined : parseIPv4Prefix(cidr, 'cidr');
    } catch (err) {
      throw badRequest('cidr', (err as Error).message);
    }
    const rows = ipList(deps, filter);
    if (rows.length === 0 && cidr !== undefined) throw new ApiError(404, `no ipcache entry within ${cidr}`);
    return { status: 200, body: rows };
  });
}
