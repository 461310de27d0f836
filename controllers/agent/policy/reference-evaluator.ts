// A direct, deliberately simple evaluation of policies for the property test: it reads the CNP,
// CCNP and NetworkPolicy objects as written and decides one packet, with no selector cache, no
// identities for CIDRs and no map entries. It shares no code with the engine it checks.
//   a matching deny → drop; direction not enforced → allow; node → endpoint with allow-localhost
//   → allow; only rules without default deny → allow; a matching allow → allow; else drop.
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, LabelSelector, Rule } from '../../../crds/gen/index.js';
import type { KubeNetworkPolicy } from './parse.js';
import type { NamedPort, PolicyEnforcementMode } from './resolve.js';

/** `source:key` → value. */
export type RefLabels = Readonly<Record<string, string>>;

export type RefPeer = { identity: number; labels: RefLabels } | { ip: string };

export interface RefPacket {
  direction: 'ingress' | 'egress';
  peer: RefPeer;
  protocol: number;
  port: number;
}

export interface RefWorld {
  mode: PolicyEnforcementMode;
  allowLocalhost: boolean;
  clusterName: string;
  clusterNamedPorts: readonly NamedPort[];
}

export type RefPolicy = CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | (KubeNetworkPolicy & { kind: 'NetworkPolicy' });

const SOURCES = ['k8s', 'reserved', 'cidr', 'any', 'cni', 'unspec', 'fqdn', 'node', 'cidrgroup'];
const NS = 'io.kubernetes.pod.namespace';
const NS_LABELS = 'io.cilium.k8s.namespace.labels.';
const HOST = 1;
const WORLD = 2;
const ICMP_NAMES: Record<string, number> = { EchoReply: 0, DestinationUnreachable: 3, Redirect: 5, Echo: 8, EchoRequest: 8, TimeExceeded: 11 };

function splitKey(k: string, dflt: string): [string, string] {
  const i = k.indexOf(':');
  if (i > 0 && SOURCES.includes(k.slice(0, i))) return [k.slice(0, i), k.slice(i + 1)];
  return [dflt, k];
}

function valuesOf(labels: RefLabels, source: string, key: string): string[] {
  return Object.entries(labels)
    .filter(([k]) => {
      const [s, kk] = splitKey(k, 'unspec');
      return kk === key && (source === 'any' || s === source);
    })
    .map(([, v]) => v);
}

function selects(sel: LabelSelector, labels: RefLabels, dflt: string): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    const [s, key] = splitKey(k, dflt);
    if (!valuesOf(labels, s, key).includes(v ?? '')) return false;
  }
  for (const e of sel.matchExpressions ?? []) {
    const [s, key] = splitKey(e.key, dflt);
    const vals = valuesOf(labels, s, key);
    const hit = vals.some((v) => (e.values ?? []).includes(v));
    if (e.operator === 'In' && !hit) return false;
    if (e.operator === 'NotIn' && hit) return false;
    if (e.operator === 'Exists' && vals.length === 0) return false;
    if (e.operator === 'DoesNotExist' && vals.length > 0) return false;
  }
  return true;
}

function keysOf(sel: LabelSelector): [string, string][] {
  return [...Object.keys(sel.matchLabels ?? {}), ...(sel.matchExpressions ?? []).map((e) => e.key)].map((k) => splitKey(k, 'any'));
}

function ipInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipInt(ip) / size) === Math.floor(ipInt(base) / size);
}

/** The labels a peer has for endpoint selectors: a pod's or reserved identity's, or the world's. */
function peerLabels(peer: RefPeer): RefLabels {
  return 'ip' in peer ? { 'reserved:world': '' } : peer.labels;
}

function peerNamespace(peer: RefPeer): string | undefined {
  return 'ip' in peer ? undefined : peer.labels[`k8s:${NS}`];
}

function cidrMatches(peer: RefPeer, cidr: string, except: readonly string[]): boolean {
  if ('ip' in peer) return inCidr(peer.ip, cidr) && !except.some((e) => inCidr(peer.ip, e));
  // 0.0.0.0/0 is the world entity, which the reserved world identity belongs to.
  return cidr.endsWith('/0') && peer.identity === WORLD;
}

function entityMatches(entity: string, peer: RefPeer, world: RefWorld): boolean {
  const labels = peerLabels(peer);
  const reserved = Object.keys(labels).filter((k) => k.startsWith('reserved:'));
  const cluster = labels['k8s:io.cilium.k8s.policy.cluster'];
  switch (entity) {
    case 'all':
      return true;
    case 'world':
    case 'world-ipv4':
      return reserved.includes('reserved:world');
    case 'cluster':
      return reserved.some((k) => k !== 'reserved:world') || cluster === world.clusterName;
    case 'cluster-mesh':
      return reserved.some((k) => k !== 'reserved:world') || cluster !== undefined;
    case 'none':
    case 'world-ipv6':
      return false;
    default:
      return reserved.includes(`reserved:${entity}`);
  }
}

function resolvePortName(name: string, protocol: number, candidates: readonly NamedPort[]): number | undefined {
  const ports = new Set(candidates.filter((p) => p.name === name && (protocol === 0 || p.protocol === protocol)).map((p) => p.port));
  return ports.size === 1 ? [...ports][0] : undefined;
}

const PROTO: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132, ANY: 0 };

function portMatches(protocol: number, portText: string, endPort: number | undefined, pkt: RefPacket, own: readonly NamedPort[], world: RefWorld): boolean {
  let port: number | undefined = /^[0-9]+$/.test(portText) ? Number(portText) : undefined;
  if (port === undefined) {
    port = resolvePortName(portText, protocol, pkt.direction === 'ingress' ? own : world.clusterNamedPorts);
    if (port === undefined) return false;
    endPort = undefined;
  }
  if (port === 0) return protocol === 0 || pkt.protocol === protocol;
  const protoOk = protocol === 0 ? [6, 17, 132].includes(pkt.protocol) : pkt.protocol === protocol;
  const last = endPort !== undefined && endPort > port ? endPort : port;
  return protoOk && pkt.port >= port && pkt.port <= last;
}

interface Item {
  peer: (p: RefPeer) => boolean;
  port: (p: RefPacket) => boolean;
}

const FROM = { ingress: ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromGroups', 'fromNodes', 'fromRequires'], egress: ['toEndpoints', 'toCIDR', 'toCIDRSet', 'toEntities', 'toGroups', 'toNodes', 'toRequires', 'toServices', 'toFQDNs'] };

function ciliumItem(raw: Record<string, unknown>, dir: 'ingress' | 'egress', deny: boolean, policy: RefPolicy, rule: Rule, own: readonly NamedPort[], world: RefWorld): Item {
  const p = dir === 'ingress' ? 'from' : 'to';
  const namespace = policy.kind === 'CiliumNetworkPolicy' ? (policy.metadata.namespace ?? 'default') : '';
  const subjectInit = keysOf(rule.endpointSelector ?? {}).some(([s, k]) => s === 'reserved' && k === 'init');
  const endpointOk = (sel: LabelSelector, peer: RefPeer): boolean => {
    if (!selects(sel, peerLabels(peer), 'any')) return false;
    const keys = keysOf(sel);
    if (keys.some(([s]) => s === 'reserved')) return true;
    if (keys.some(([s, k]) => (s === 'k8s' || s === 'any') && k === NS)) return true;
    if (namespace === '') return subjectInit || peerNamespace(peer) !== undefined;
    if (keys.some(([s, k]) => (s === 'k8s' || s === 'any') && k.startsWith(NS_LABELS))) return true;
    return peerNamespace(peer) === namespace;
  };
  const endpoints = raw[`${p}Endpoints`] as LabelSelector[] | undefined;
  const cidrs = raw[`${p}CIDR`] as string[] | undefined;
  const cidrSets = raw[`${p}CIDRSet`] as { cidr?: string; except?: string[] }[] | undefined;
  const entities = raw[`${p}Entities`] as string[] | undefined;
  const given = FROM[dir].some((f) => raw[f] !== undefined);
  const auth = (raw.authentication as { mode?: string } | undefined)?.mode;
  const blocked = !deny && ((auth !== undefined && auth !== 'disabled') || raw[`${p}Requires`] !== undefined);
  const toPorts = raw.toPorts as { ports?: { port?: string; endPort?: number; protocol?: string }[]; rules?: unknown }[] | undefined;
  const icmps = raw.icmps as { fields?: { family?: string; type: number | string }[] }[] | undefined;
  const peer = (q: RefPeer): boolean => {
    if (blocked) return false;
    if (!given) return (toPorts?.length ?? 0) + (icmps?.length ?? 0) > 0;
    return (
      (endpoints ?? []).some((s) => endpointOk(s, q)) ||
      (cidrs ?? []).some((c) => cidrMatches(q, c, [])) ||
      (cidrSets ?? []).some((c) => c.cidr !== undefined && cidrMatches(q, c.cidr, c.except ?? [])) ||
      (entities ?? []).some((e) => entityMatches(e, q, world))
    );
  };
  const port = (pkt: RefPacket): boolean => {
    if ((toPorts?.length ?? 0) + (icmps?.length ?? 0) === 0) return true;
    const tp = (toPorts ?? []).some((r) => r.rules === undefined && (r.ports ?? []).some((pp) => portMatches(PROTO[pp.protocol ?? 'ANY'] ?? -1, pp.port ?? '0', pp.endPort, pkt, own, world)));
    const ic = (icmps ?? []).some((r) =>
      (r.fields ?? []).some((f) => f.family !== 'IPv6' && pkt.protocol === 1 && (typeof f.type === 'number' ? f.type : (ICMP_NAMES[f.type] ?? Number(f.type))) === pkt.port),
    );
    return tp || ic;
  };
  return { peer, port };
}

interface RefRule {
  items: Record<'ingress' | 'egress', { allow: Item[]; deny: Item[] }>;
  has: Record<'ingress' | 'egress', boolean>;
  defaultDeny: Record<'ingress' | 'egress', boolean>;
}

function ciliumRules(policy: CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy, ep: RefLabels, own: readonly NamedPort[], world: RefWorld): RefRule[] {
  const out: RefRule[] = [];
  for (const rule of [...(policy.spec ? [policy.spec] : []), ...(policy.specs ?? [])]) {
    if (!rule.endpointSelector || !selects(rule.endpointSelector, ep, 'any')) continue;
    if (policy.kind === 'CiliumNetworkPolicy' && ep[`k8s:${NS}`] !== (policy.metadata.namespace ?? 'default')) continue;
    const mk = (list: unknown[] | undefined, dir: 'ingress' | 'egress', deny: boolean): Item[] => (list ?? []).map((raw) => ciliumItem(raw as Record<string, unknown>, dir, deny, policy, rule, own, world));
    const has = { ingress: (rule.ingress?.length ?? 0) + (rule.ingressDeny?.length ?? 0) > 0, egress: (rule.egress?.length ?? 0) + (rule.egressDeny?.length ?? 0) > 0 };
    out.push({
      items: {
        ingress: { allow: mk(rule.ingress, 'ingress', false), deny: mk(rule.ingressDeny, 'ingress', true) },
        egress: { allow: mk(rule.egress, 'egress', false), deny: mk(rule.egressDeny, 'egress', true) },
      },
      has,
      defaultDeny: { ingress: has.ingress && rule.enableDefaultDeny?.ingress !== false, egress: has.egress && rule.enableDefaultDeny?.egress !== false },
    });
  }
  return out;
}

function kubeRules(np: KubeNetworkPolicy, ep: RefLabels, own: readonly NamedPort[], world: RefWorld): RefRule[] {
  const namespace = np.metadata?.namespace ?? 'default';
  const spec = np.spec ?? {};
  if (ep[`k8s:${NS}`] !== namespace || !selects(spec.podSelector ?? {}, ep, 'k8s')) return [];
  const kubePeer = (peer: { podSelector?: LabelSelector; namespaceSelector?: LabelSelector; ipBlock?: { cidr: string; except?: string[] } }) => (q: RefPeer): boolean => {
    if (peer.ipBlock) return cidrMatches(q, peer.ipBlock.cidr, peer.ipBlock.except ?? []);
    const ns = peerNamespace(q);
    if (ns === undefined) return false;
    if (peer.namespaceSelector) {
      const nsLabels = Object.fromEntries(Object.entries(peerLabels(q)).filter(([k]) => k.startsWith(`k8s:${NS_LABELS}`)).map(([k, v]) => [`k8s:${k.slice(4 + NS_LABELS.length)}`, v]));
      return selects(peer.namespaceSelector, nsLabels, 'k8s') && selects(peer.podSelector ?? {}, peerLabels(q), 'k8s');
    }
    return ns === namespace && selects(peer.podSelector ?? {}, peerLabels(q), 'k8s');
  };
  const ports = (list: { protocol?: string; port?: number | string; endPort?: number }[] | undefined) => (pkt: RefPacket): boolean =>
    list === undefined || list.length === 0 || list.some((p) => portMatches(PROTO[p.protocol ?? 'TCP'] ?? -1, p.port === undefined ? '0' : String(p.port), p.endPort, pkt, own, world));
  const items = (rules: { peers?: Parameters<typeof kubePeer>[0][]; ports?: Parameters<typeof ports>[0] }[]): Item[] =>
    rules.map((r) => ({ peer: (q) => r.peers === undefined || r.peers.length === 0 || r.peers.some((p) => kubePeer(p)(q)), port: ports(r.ports) }));
  const types = spec.policyTypes ?? [];
  const has = { ingress: (spec.ingress?.length ?? 0) > 0 || types.includes('Ingress') || !types.includes('Egress'), egress: (spec.egress?.length ?? 0) > 0 || types.includes('Egress') };
  return [
    {
      items: {
        ingress: { allow: items((spec.ingress ?? []).map((r) => ({ peers: r.from ?? r._from, ports: r.ports }))), deny: [] },
        egress: { allow: items((spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }))), deny: [] },
      },
      has,
      defaultDeny: has,
    },
  ];
}

/** Whether the endpoint with these labels and named ports lets the packet pass. */
export function referenceVerdict(policies: readonly RefPolicy[], ep: { labels: RefLabels; namedPorts: readonly NamedPort[] }, pkt: RefPacket, world: RefWorld): boolean {
  if (world.mode === 'never') return true;
  const rules = policies.flatMap((p) => (p.kind === 'NetworkPolicy' ? kubeRules(p, ep.labels, ep.namedPorts, world) : ciliumRules(p, ep.labels, ep.namedPorts, world)));
  const dir = pkt.direction;
  const mine = rules.filter((r) => r.has[dir]);
  const hit = (items: Item[]): boolean => items.some((i) => i.peer(pkt.peer) && i.port(pkt));
  if (mine.some((r) => hit(r.items[dir].deny))) return false;
  if (world.mode !== 'always' && mine.length === 0) return true;
  if (dir === 'ingress' && world.allowLocalhost && 'identity' in pkt.peer && pkt.peer.identity === HOST) return true;
  if (world.mode !== 'always' && !mine.some((r) => r.defaultDeny[dir])) return true;
  return mine.some((r) => hit(r.items[dir].allow));
}
