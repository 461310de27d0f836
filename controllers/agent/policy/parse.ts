// CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and networking.k8s.io/v1 NetworkPolicy →
// Rule[], as upstream's ParseToCiliumRule (pkg/k8s/apis/cilium.io/utils) and ParseNetworkPolicy
// (pkg/k8s/network_policy.go) do: namespace defaulting of selectors, rule labels, KNP peers.
// What we cannot enforce yet is collected as Unsupported and grants nothing.
import type {
  CIDRRule,
  CiliumClusterwideNetworkPolicy,
  CiliumNetworkPolicy,
  Entity,
  ICMPRule,
  LabelSelector,
  PortProtocol,
  Rule as CiliumRule,
} from '../../../crds/gen/index.js';
import { formatIPv4Prefix, type IPv4Prefix, parseIPv4Prefix, prefixContains } from '../../../datapath/maps/ipv4.js';
import { IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, PORT_PROTOCOLS } from '../../../datapath/maps/protocols.js';
import { NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL } from '../labels/keys.js';
import { type Label, LabelSet, SOURCE_ANY, SOURCE_K8S, SOURCE_RESERVED } from '../labels/labels.js';
import { cidrSelector, entitySelectors } from './identities.js';
import { type Direction, type FieldError, type ParsedPolicy, PolicyParseError, type PolicyKind, type PolicyRef, type PortSpec, type Rule, type RuleSection, type Unsupported } from './rule.js';
import { EndpointSelector } from './selector.js';

/** networking.k8s.io/v1 NetworkPolicy: `from` as the API serves it, `_from` as client-node types it. */
export interface KubeNetworkPolicy {
  metadata?: { name?: string; namespace?: string; uid?: string };
  spec?: {
    podSelector?: LabelSelector;
    policyTypes?: string[];
    ingress?: { from?: KubePeer[]; _from?: KubePeer[]; ports?: KubePort[] }[];
    egress?: { to?: KubePeer[]; ports?: KubePort[] }[];
  };
}
interface KubePeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface KubePort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

const PROTOCOLS: Record<string, number> = { ANY: 0, TCP: IPPROTO_TCP, UDP: IPPROTO_UDP, SCTP: IPPROTO_SCTP, VRRP: 112, IGMP: 2 };

/** pkg/policy/api/icmp.go names for IPv4 types. */
const ICMPV4_TYPES: Record<string, number> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

const NAMED_PORT = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export interface ParseOptions {
  /** The local cluster's name, what the `cluster` entity matches on pods (upstream default "default"). */
  clusterName?: string;
}

// Collects errors, unsupported parts and prefixes while one policy is parsed.
class Context {
  readonly errors: FieldError[] = [];
  readonly unsupported: Unsupported[] = [];
  readonly prefixes = new Set<string>();
  constructor(
    readonly ref: PolicyRef,
    readonly clusterName: string,
  ) {}

  error(field: string, reason: string): void {
    this.errors.push({ field, reason });
  }

  unsupportedPart(path: string, reason: string): void {
    this.unsupported.push({ path, reason });
  }
}

function policyLabels(ref: PolicyRef, uid: string | undefined, extra: readonly { key: string; value?: string; source?: string }[] = []): LabelSet {
  const labels: Label[] = [
    { source: SOURCE_K8S, key: 'io.cilium.k8s.policy.derived-from', value: ref.kind },
    { source: SOURCE_K8S, key: 'io.cilium.k8s.policy.name', value: ref.name },
    { source: SOURCE_K8S, key: 'io.cilium.k8s.policy.uid', value: uid ?? '' },
  ];
  if (ref.namespace) labels.push({ source: SOURCE_K8S, key: 'io.cilium.k8s.policy.namespace', value: ref.namespace });
  for (const l of extra) labels.push({ source: l.source ?? 'unspec', key: l.key, value: l.value ?? '' });
  return new LabelSet(labels);
}

/** upstream getEndpointSelector: scope a peer selector to the policy's namespace (or, in a CCNP, to pods). */
function peerSelector(sel: LabelSelector, namespace: string, matchesInit: boolean): EndpointSelector {
  const es = EndpointSelector.fromLabelSelector(sel);
  if (es.hasSource(SOURCE_RESERVED)) return es;
  if (es.hasKey(SOURCE_K8S, POD_NAMESPACE_LABEL) || es.hasKey(SOURCE_ANY, POD_NAMESPACE_LABEL)) return es;
  if (namespace === '') {
    return matchesInit ? es : es.with({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'Exists', values: [] });
  }
  if (es.hasKeyPrefix(SOURCE_K8S, NAMESPACE_LABELS_PREFIX) || es.hasKeyPrefix(SOURCE_ANY, NAMESPACE_LABELS_PREFIX)) return es;
  return es.with({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'In', values: [namespace] });
}

function parsePrefix(ctx: Context, text: string, field: string): IPv4Prefix | undefined {
  if (text.includes(':')) {
    ctx.unsupportedPart(field, 'IPv6 CIDRs are not enforced (the datapath is IPv4)');
    return undefined;
  }
  try {
    if (!text.includes('.')) throw new Error('not an IPv4 prefix');
    return parseIPv4Prefix(text, field);
  } catch (err) {
    ctx.error(field, (err as Error).message);
    return undefined;
  }
}

function cidrPeer(ctx: Context, cidr: string, except: readonly string[], field: string, exceptField: (i: number) => string): EndpointSelector | undefined {
  const p = parsePrefix(ctx, cidr, field);
  if (!p) return undefined;
  const holes: IPv4Prefix[] = [];
  except.forEach((e, i) => {
    const h = parsePrefix(ctx, e, exceptField(i));
    if (!h) return;
    if (!prefixContains(p, h)) ctx.error(exceptField(i), `${e} is not inside ${formatIPv4Prefix(p)}`);
    else holes.push(h);
  });
  for (const q of [p, ...holes]) if (q.bits > 0) ctx.prefixes.add(formatIPv4Prefix(q));
  return cidrSelector(p, holes);
}

function cidrSetPeers(ctx: Context, set: readonly CIDRRule[], field: string): EndpointSelector[] {
  const out: EndpointSelector[] = [];
  set.forEach((c, i) => {
    const f = `${field}[${i}]`;
    if (c.cidr === undefined) {
      ctx.unsupportedPart(f, 'cidrGroupRef/cidrGroupSelector (CiliumCIDRGroup) is not supported');
      return;
    }
    const sel = cidrPeer(ctx, c.cidr, c.except ?? [], `${f}.cidr`, (j) => `${f}.except[${j}]`);
    if (sel) out.push(sel);
  });
  return out;
}

function parsePortProtocol(ctx: Context, pp: PortProtocol, field: string): PortSpec | undefined {
  const protocol = PROTOCOLS[pp.protocol ?? 'ANY'];
  if (protocol === undefined) {
    ctx.error(`${field}.protocol`, `unknown protocol ${String(pp.protocol)}`);
    return undefined;
  }
  const text = pp.port ?? '0';
  if (/^[0-9]+$/.test(text)) {
    const port = Number(text);
    if (port > 65535) {
      ctx.error(`${field}.port`, `port ${text} is outside 0-65535`);
      return undefined;
    }
    if (protocol !== 0 && !PORT_PROTOCOLS.includes(protocol) && (port !== 0 || pp.endPort !== undefined)) {
      ctx.error(`${field}.port`, `protocol ${pp.protocol} has no ports`);
      return undefined;
    }
    if (pp.endPort !== undefined && pp.endPort !== 0 && port !== 0) {
      if (!Number.isInteger(pp.endPort) || pp.endPort < port || pp.endPort > 65535) {
        ctx.error(`${field}.endPort`, `endPort ${pp.endPort} must be an integer from port ${port} to 65535`);
        return undefined;
      }
      if (pp.endPort > port) return { protocol, port, endPort: pp.endPort };
    }
    return { protocol, port };
  }
  if (!NAMED_PORT.test(text) || text.length > 15) {
    ctx.error(`${field}.port`, `"${text}" is neither a port number nor a port name`);
    return undefined;
  }
  return { protocol, port: 0, name: text };
}

function parseIcmps(ctx: Context, icmps: readonly ICMPRule[], field: string): PortSpec[] {
  const out: PortSpec[] = [];
  icmps.forEach((r, i) =>
    (r.fields ?? []).forEach((f, j) => {
      const path = `${field}[${i}].fields[${j}]`;
      if (f.family === 'IPv6') {
        ctx.unsupportedPart(path, 'ICMPv6 is not enforced (the datapath is IPv4)');
        return;
      }
      const type = typeof f.type === 'number' ? f.type : /^[0-9]+$/.test(f.type) ? Number(f.type) : ICMPV4_TYPES[f.type];
      if (type === undefined || !Number.isInteger(type) || type < 0 || type > 255) ctx.error(`${path}.type`, `"${String(f.type)}" is not an IPv4 ICMP type`);
      else out.push({ protocol: IPPROTO_ICMP, port: type });
    }),
  );
  return out;
}

interface PortRuleLike {
  ports?: PortProtocol[];
  rules?: unknown;
  serverNames?: unknown;
  terminatingTLS?: unknown;
  originatingTLS?: unknown;
  listener?: unknown;
}

/** toPorts + icmps of one item: undefined when it has neither, empty lists included (every port, as upstream's len() == 0). */
function sectionPorts(ctx: Context, toPorts: readonly PortRuleLike[] | undefined, icmps: readonly ICMPRule[] | undefined, field: string): PortSpec[] | undefined {
  if ((toPorts?.length ?? 0) === 0 && (icmps?.length ?? 0) === 0) return undefined;
  const out: PortSpec[] = [];
  (toPorts ?? []).forEach((pr, i) => {
    const f = `${field}.toPorts[${i}]`;
    const l7 = (['rules', 'serverNames', 'terminatingTLS', 'originatingTLS', 'listener'] as const).filter((k) => pr[k] !== undefined);
    const specs = (pr.ports ?? []).map((pp, j) => parsePortProtocol(ctx, pp, `${f}.ports[${j}]`));
    if (l7.length > 0) {
      ctx.unsupportedPart(`${f}.${l7[0]}`, 'L7 rules (HTTP/DNS/Kafka/TLS/listener) are not enforced; these ports are not opened');
      return;
    }
    for (const s of specs) if (s) out.push(s);
  });
  out.push(...parseIcmps(ctx, icmps ?? [], `${field}.icmps`));
  return out;
}

interface CommonItem {
  endpoints?: LabelSelector[];
  cidr?: string[];
  cidrSet?: CIDRRule[];
  entities?: Entity[];
}

// Field names per direction, so ingress and egress share one parser.
const FIELDS = {
  ingress: { endpoints: 'fromEndpoints', cidr: 'fromCIDR', cidrSet: 'fromCIDRSet', entities: 'fromEntities' },
  egress: { endpoints: 'toEndpoints', cidr: 'toCIDR', cidrSet: 'toCIDRSet', entities: 'toEntities' },
} as const;

const UNSUPPORTED_PEERS = {
  ingress: { fromGroups: 'fromGroups (cloud security groups)', fromNodes: 'fromNodes (node selectors)', fromRequires: 'fromRequires' },
  egress: {
    toGroups: 'toGroups (cloud security groups)',
    toNodes: 'toNodes (node selectors)',
    toRequires: 'toRequires',
    toServices: 'toServices',
    toFQDNs: 'toFQDNs (DNS-based policy)',
  },
} as const;

function parseItem(
  ctx: Context,
  raw: Record<string, unknown>,
  direction: Direction,
  deny: boolean,
  field: string,
  namespace: string,
  matchesInit: boolean,
): RuleSection {
  const names = FIELDS[direction];
  const item: CommonItem = {
    endpoints: raw[names.endpoints] as LabelSelector[] | undefined,
    cidr: raw[names.cidr] as string[] | undefined,
    cidrSet: raw[names.cidrSet] as CIDRRule[] | undefined,
    entities: raw[names.entities] as Entity[] | undefined,
  };
  const peers: EndpointSelector[] = [];
  (item.endpoints ?? []).forEach((s) => peers.push(peerSelector(s, namespace, matchesInit)));
  (item.cidr ?? []).forEach((c, i) => {
    const sel = cidrPeer(ctx, c, [], `${field}.${names.cidr}[${i}]`, () => '');
    if (sel) peers.push(sel);
  });
  peers.push(...cidrSetPeers(ctx, item.cidrSet ?? [], `${field}.${names.cidrSet}`));
  for (const e of item.entities ?? []) peers.push(...entitySelectors(e, ctx.clusterName));

  let l3Given = Object.values(names).some((n) => raw[n] !== undefined);
  let grants = true;
  for (const [key, what] of Object.entries(UNSUPPORTED_PEERS[direction])) {
    if (raw[key] === undefined) continue;
    l3Given = true;
    ctx.unsupportedPart(`${field}.${key}`, `${what} is not supported${deny ? '; this deny is not applied to those peers' : ''}`);
    // Requirements narrow the other peers; without them the item would grant too much.
    if (key.endsWith('Requires')) grants = false;
  }
  const auth = (raw.authentication as { mode?: string } | undefined)?.mode;
  if (auth !== undefined && auth !== 'disabled') {
    ctx.unsupportedPart(`${field}.authentication`, `authentication mode ${auth} is not supported; this item grants nothing`);
    grants = false;
  }
  const ports = sectionPorts(ctx, raw.toPorts as PortRuleLike[] | undefined, raw.icmps as ICMPRule[] | undefined, field);
  // An item without peers applies to every peer when it names ports; an empty item ({}) to none.
  if (!l3Given && ports !== undefined) peers.push(EndpointSelector.WILDCARD);
  return { direction, deny, peers: grants || deny ? peers : [], ports, path: field };
}

function parseCiliumRule(ctx: Context, r: CiliumRule, path: string, namespace: string, uid: string | undefined): Rule {
  let subject: EndpointSelector | undefined;
  if (r.endpointSelector) {
    subject = EndpointSelector.fromLabelSelector(r.endpointSelector);
    if (namespace !== '') {
      subject = new EndpointSelector(subject.requirements.filter((q) => !(q.source === SOURCE_K8S && q.key === POD_NAMESPACE_LABEL && q.operator === 'In')));
      subject = subject.with({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, operator: 'In', values: [namespace] });
    }
  } else if (r.nodeSelector) {
    ctx.unsupportedPart(`${path}.nodeSelector`, 'host policies (nodeSelector) are not enforced');
  } else {
    ctx.error(path, 'one of endpointSelector or nodeSelector is required');
  }
  const matchesInit = subject?.hasKey(SOURCE_RESERVED, 'init') ?? false;
  const sections: RuleSection[] = [];
  const lists = [
    ['ingress', false, r.ingress],
    ['ingress', true, r.ingressDeny],
    ['egress', false, r.egress],
    ['egress', true, r.egressDeny],
  ] as const;
  for (const [direction, deny, items] of lists) {
    const name = `${direction}${deny ? 'Deny' : ''}`;
    (items ?? []).forEach((item, i) => sections.push(parseItem(ctx, item as Record<string, unknown>, direction, deny, `${path}.${name}[${i}]`, namespace, matchesInit)));
  }
  const hasDirection = {
    ingress: (r.ingress?.length ?? 0) + (r.ingressDeny?.length ?? 0) > 0,
    egress: (r.egress?.length ?? 0) + (r.egressDeny?.length ?? 0) > 0,
  };
  return {
    policy: ctx.ref,
    path,
    subject,
    sections,
    hasDirection,
    defaultDeny: { ingress: r.enableDefaultDeny?.ingress ?? hasDirection.ingress, egress: r.enableDefaultDeny?.egress ?? hasDirection.egress },
    labels: policyLabels(ctx.ref, uid, r.labels),
    unsupported: [],
    cookie: 0,
  };
}

function finish(ctx: Context, rules: Rule[]): ParsedPolicy {
  if (ctx.errors.length > 0) throw new PolicyParseError(ctx.ref, ctx.errors);
  for (const rule of rules) rule.unsupported = ctx.unsupported.filter((u) => u.path === rule.path || u.path.startsWith(`${rule.path}.`));
  return { ref: ctx.ref, rules, prefixes: [...ctx.prefixes].sort(), unsupported: ctx.unsupported };
}

/** A CNP (namespaced) or CCNP (clusterwide); throws PolicyParseError naming each bad field. */
export function parseCiliumPolicy(obj: CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy, opts: ParseOptions = {}): ParsedPolicy {
  const kind: PolicyKind = obj.kind;
  const namespace = kind === 'CiliumNetworkPolicy' ? (obj.metadata.namespace ?? 'default') : '';
  const ref: PolicyRef = { kind, namespace, name: obj.metadata.name ?? '' };
  const ctx = new Context(ref, opts.clusterName ?? 'default');
  if (obj.spec === undefined && obj.specs === undefined) ctx.error('spec', 'one of spec or specs is required');
  const rules: Rule[] = [];
  if (obj.spec) rules.push(parseCiliumRule(ctx, obj.spec, 'spec', namespace, obj.metadata.uid));
  (obj.specs ?? []).forEach((r, i) => rules.push(parseCiliumRule(ctx, r, `specs[${i}]`, namespace, obj.metadata.uid)));
  return finish(ctx, rules);
}

/** upstream parseNetworkPolicyPeer: selectors with the k8s source, scoped to the policy's namespace. */
function kubePeerSelector(peer: KubePeer, namespace: string): EndpointSelector | undefined {
  if (peer.namespaceSelector) {
    const nsSel = peer.namespaceSelector;
    const ns: LabelSelector = {
      matchLabels: Object.fromEntries(Object.entries(nsSel.matchLabels ?? {}).map(([k, v]) => [`${NAMESPACE_LABELS_PREFIX}${k}`, v])),
      matchExpressions: (nsSel.matchExpressions ?? []).map((e) => ({ ...e, key: `${NAMESPACE_LABELS_PREFIX}${e.key}` })),
    };
    if (Object.keys(ns.matchLabels ?? {}).length === 0 && (ns.matchExpressions ?? []).length === 0) {
      ns.matchExpressions = [{ key: POD_NAMESPACE_LABEL, operator: 'Exists' }];
    }
    const pods = EndpointSelector.fromLabelSelector(peer.podSelector, SOURCE_K8S);
    return new EndpointSelector([...EndpointSelector.fromLabelSelector(ns, SOURCE_K8S).requirements, ...pods.requirements]);
  }
  if (peer.podSelector) {
    const sel: LabelSelector = { ...peer.podSelector, matchLabels: { ...peer.podSelector.matchLabels, [POD_NAMESPACE_LABEL]: namespace } };
    return EndpointSelector.fromLabelSelector(sel, SOURCE_K8S);
  }
  return undefined;
}

function kubePorts(ctx: Context, ports: readonly KubePort[] | undefined, field: string): PortSpec[] | undefined {
  if (ports === undefined || ports.length === 0) return undefined;
  const out: PortSpec[] = [];
  ports.forEach((p, i) => {
    const spec = parsePortProtocol(ctx, { protocol: (p.protocol ?? 'TCP') as PortProtocol['protocol'], port: p.port === undefined ? '0' : String(p.port), endPort: p.endPort }, `${field}.ports[${i}]`);
    if (spec) out.push(spec);
  });
  return out;
}

/** A networking.k8s.io/v1 NetworkPolicy, translated as upstream's ParseNetworkPolicy. */
export function parseNetworkPolicy(np: KubeNetworkPolicy, opts: ParseOptions = {}): ParsedPolicy {
  const namespace = np.metadata?.namespace ?? 'default';
  const ref: PolicyRef = { kind: 'NetworkPolicy', namespace, name: np.metadata?.name ?? '' };
  const ctx = new Context(ref, opts.clusterName ?? 'default');
  const spec = np.spec ?? {};
  const sections: RuleSection[] = [];
  const directions = [
    ['ingress', spec.ingress?.map((r) => ({ peers: r.from ?? r._from, ports: r.ports })) ?? []],
    ['egress', spec.egress?.map((r) => ({ peers: r.to, ports: r.ports })) ?? []],
  ] as const;
  for (const [direction, items] of directions) {
    items.forEach((item, i) => {
      const path = `spec.${direction}[${i}]`;
      const ports = kubePorts(ctx, item.ports, path);
      const peerField = direction === 'ingress' ? 'from' : 'to';
      if (item.peers === undefined || item.peers.length === 0) {
        sections.push({ direction, deny: false, peers: [EndpointSelector.WILDCARD], ports, path });
        return;
      }
      item.peers.forEach((peer, j) => {
        const f = `${path}.${peerField}[${j}]`;
        const peers: EndpointSelector[] = [];
        const sel = kubePeerSelector(peer, namespace);
        if (sel) peers.push(sel);
        if (peer.ipBlock) {
          const c = cidrPeer(ctx, peer.ipBlock.cidr, peer.ipBlock.except ?? [], `${f}.ipBlock.cidr`, (k) => `${f}.ipBlock.except[${k}]`);
          if (c) peers.push(c);
        }
        sections.push({ direction, deny: false, peers, ports, path: f });
      });
    });
  }
  const types = spec.policyTypes ?? [];
  const hasDirection = {
    ingress: (spec.ingress?.length ?? 0) > 0 || types.includes('Ingress') || !types.includes('Egress'),
    egress: (spec.egress?.length ?? 0) > 0 || types.includes('Egress'),
  };
  const subjectSel: LabelSelector = { ...spec.podSelector, matchLabels: { ...spec.podSelector?.matchLabels, [POD_NAMESPACE_LABEL]: namespace } };
  const rule: Rule = {
    policy: ref,
    path: 'spec',
    subject: EndpointSelector.fromLabelSelector(subjectSel, SOURCE_K8S),
    sections,
    hasDirection,
    defaultDeny: { ...hasDirection },
    labels: policyLabels(ref, np.metadata?.uid),
    unsupported: [],
    cookie: 0,
  };
  return finish(ctx, [rule]);
}
