// flow.FlowFilter matching as upstream's observer applies it (pkg/hubble/filters): within one
// filter every set field must match, a field matches when any of its values does; a request's
// whitelist matches when any filter does (or it is empty), its blacklist when none does.
import { BlockList, isIP } from 'node:net';
import type { Endpoint, EventTypeFilter, Flow, FlowFilter, NetworkInterface, TCPFlags, Workload } from './flow-types.js';
import { LabelSelector } from './label-selector.js';

export type FlowPredicate = (flow: Flow) => boolean;

/** A filter the server refuses (upstream answers InvalidArgument / Unknown with the reason). */
export class FlowFilterError extends Error {
  constructor(field: string, reason: string) {
    super(`invalid flow filter: ${field}: ${reason}`);
    this.name = 'FlowFilterError';
  }
}

// Upstream's cluster name for node names given without one (pkg/defaults ClusterName).
const DEFAULT_CLUSTER = 'default';

function byIPs(field: string, ips: readonly string[], get: (f: Flow) => string | undefined): FlowPredicate {
  const exact = new Set<string>();
  const prefixes = new BlockList();
  for (const ip of ips) {
    if (ip.includes('/')) {
      const [addr = '', len = ''] = ip.split('/');
      const family = isIP(addr);
      const bits = Number(len);
      if (family === 0 || !/^[0-9]+$/.test(len) || bits > (family === 4 ? 32 : 128)) throw new FlowFilterError(field, `${JSON.stringify(ip)} is not an IP prefix`);
      prefixes.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6');
    } else {
      if (isIP(ip) === 0) throw new FlowFilterError(field, `${JSON.stringify(ip)} is not an IP address`);
      exact.add(ip);
    }
  }
  return (f) => {
    const ip = get(f);
    if (!ip) return false;
    if (exact.has(ip)) return true;
    const family = isIP(ip);
    return family !== 0 && prefixes.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** `ns/prefix`, `ns/` (whole namespace) or `prefix` (any namespace); the name part is a prefix. */
function byNamespacedName(field: string, names: readonly string[], get: (f: Flow) => { ns?: string; name?: string }): FlowPredicate {
  const wanted = names.map((n) => {
    if (n === '') throw new FlowFilterError(field, 'name must not be empty');
    const slash = n.indexOf('/');
    return slash < 0 ? { ns: '', prefix: n } : { ns: n.slice(0, slash), prefix: n.slice(slash + 1) };
  });
  return (f) => {
    const { ns = '', name = '' } = get(f);
    if (ns === '' && name === '') return false;
    return wanted.some((w) => (w.prefix === '' || name.startsWith(w.prefix)) && (w.ns === '' || w.ns === ns));
  };
}

function byLabels(field: string, selectors: readonly string[], get: (f: Flow) => readonly string[] | undefined): FlowPredicate {
  const compiled = selectors.map((s) => {
    try {
      return new LabelSelector(s);
    } catch (err) {
      throw new FlowFilterError(field, (err as Error).message);
    }
  });
  return (f) => {
    const labels = get(f) ?? [];
    return compiled.some((s) => s.matches(labels));
  };
}

function ports(f: Flow): { src: number; dst: number } | undefined {
  const l4 = f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP;
  return l4 && { src: l4.source_port, dst: l4.destination_port };
}

function byPort(field: string, values: readonly string[], which: 'src' | 'dst'): FlowPredicate {
  const wanted = values.map((v) => {
    const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
    if (!(n >= 0 && n <= 65535)) throw new FlowFilterError(field, `${JSON.stringify(v)} is not a port`);
    return n;
  });
  return (f) => {
    const p = ports(f);
    return p !== undefined && wanted.includes(p[which]);
  };
}

const L4_PROTOCOLS: Record<string, (f: Flow) => boolean> = {
  tcp: (f) => f.l4?.TCP !== undefined,
  udp: (f) => f.l4?.UDP !== undefined,
  sctp: (f) => f.l4?.SCTP !== undefined,
  icmp: (f) => f.l4?.ICMPv4 !== undefined,
  icmpv4: (f) => f.l4?.ICMPv4 !== undefined,
  // Neither is ever in an IPv4 L3/L4 flow; named so a filter on them is valid and matches nothing.
  icmpv6: () => false,
  vrrp: () => false,
  igmp: () => false,
  // L7 records: none in flows of this datapath.
  dns: () => false,
  http: () => false,
};

function byProtocol(values: readonly string[]): FlowPredicate {
  const checks = values.map((v) => {
    const check = L4_PROTOCOLS[v.toLowerCase()];
    if (check === undefined) throw new FlowFilterError('protocol', `unknown protocol: ${JSON.stringify(v)}`);
    return check;
  });
  return (f) => checks.some((c) => c(f));
}

function byEventType(types: readonly EventTypeFilter[]): FlowPredicate {
  return (f) => types.some((t) => (t.type === 0 || t.type === f.event_type.type) && (!t.match_sub_type || t.sub_type === f.event_type.sub_type));
}

const FLAG_NAMES: (keyof TCPFlags)[] = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];

/** A flow matches a flags filter holding every flag it sets. */
function byTcpFlags(wanted: readonly TCPFlags[]): FlowPredicate {
  return (f) => {
    const flags = f.l4?.TCP?.flags;
    return flags !== undefined && wanted.some((w) => FLAG_NAMES.every((n) => w[n] !== true || flags[n] === true));
  };
}

function byReply(values: readonly boolean[]): FlowPredicate {
  // Upstream: a flow of unknown direction matches only when it is a drop (then as not a reply).
  return (f) => (f.is_reply !== undefined || f.verdict === 'DROPPED') && values.includes(f.is_reply?.value ?? false);
}

// Upstream's node name patterns: `[cluster/]node`, `*` matching any run of name characters.
function nodeNamePattern(patterns: readonly string[]): RegExp {
  const part = (p: string): string => {
    const t = p.trim().replace(/\.$/, '').toLowerCase();
    if (t === '') return String.raw`[-0-9_a-z]+(?:\.[-0-9_a-z]+)*`;
    if (t.endsWith('.')) throw new FlowFilterError('node_name', `${JSON.stringify(p)}: multiple trailing dots`);
    return [...t]
      .map((c) => {
        if (c === '.') return String.raw`\.`;
        if (c === '*') return '[-.0-9a-z]*';
        if (/[-0-9_a-z]/.test(c)) return c;
        throw new FlowFilterError('node_name', `${JSON.stringify(p)}: invalid character ${JSON.stringify(c)}`);
      })
      .join('');
  };
  const alternatives = patterns.map((p) => {
    if (p === '') throw new FlowFilterError('node_name', 'empty pattern');
    const elems = p.split('/');
    if (elems.length > 2) throw new FlowFilterError('node_name', `${JSON.stringify(p)}: too many slashes`);
    const [cluster, node] = elems.length === 2 ? elems : ['', elems[0]!];
    return `${part(cluster!)}/${part(node!)}`;
  });
  return new RegExp(`^(?:${alternatives.join('|')})$`);
}

function byNodeName(patterns: readonly string[]): FlowPredicate {
  const re = nodeNamePattern(patterns);
  return (f) => f.node_name !== '' && re.test(f.node_name.includes('/') ? f.node_name : `${DEFAULT_CLUSTER}/${f.node_name}`);
}

function byWorkload(wanted: readonly Workload[], get: (f: Flow) => Endpoint): FlowPredicate {
  return (f) => get(f).workloads.some((w) => wanted.some((x) => (x.name === '' || x.name === w.name) && (x.kind === '' || x.kind === w.kind)));
}

function byInterface(wanted: readonly NetworkInterface[]): FlowPredicate {
  return (f) => f.interface !== undefined && wanted.some((w) => (w.index <= 0 || w.index === f.interface!.index) && (w.name === '' || w.name === f.interface!.name));
}

function byClusterName(field: string, names: readonly string[], get: (f: Flow) => Endpoint): FlowPredicate {
  if (names.includes('')) throw new FlowFilterError(field, 'name must not be empty');
  return (f) => names.includes(get(f).cluster_name);
}

const src = (f: Flow) => f.source;
const dst = (f: Flow) => f.destination;
// Fields about L7 records, DNS names, services and IP options: no flow of this datapath has them.
const NEVER_SET: (keyof FlowFilter)[] = [
  'source_fqdn',
  'destination_fqdn',
  'source_service',
  'destination_service',
  'http_status_code',
  'http_method',
  'http_path',
  'http_url',
  'http_header',
  'dns_query',
  'trace_id',
  'ip_trace_id',
  'source_ip_xlated',
];

/** The predicates of one filter's set fields; all must hold. */
export function compileFilter(ff: Partial<FlowFilter>): FlowPredicate {
  const checks: FlowPredicate[] = [];
  const set = <K extends keyof FlowFilter>(k: K): NonNullable<FlowFilter[K]> | undefined => {
    const v = ff[k];
    return Array.isArray(v) && v.length > 0 ? (v as NonNullable<FlowFilter[K]>) : undefined;
  };
  const add = <T>(v: T | undefined, make: (v: T) => FlowPredicate) => {
    if (v !== undefined) checks.push(make(v));
  };
  add(set('uuid'), (v) => (f) => v.includes(f.uuid));
  add(set('event_type'), byEventType);
  add(set('verdict'), (v) => (f) => v.includes(f.verdict));
  add(set('drop_reason_desc'), (v) => (f) => f.verdict === 'DROPPED' && f.drop_reason_desc !== undefined && v.includes(String(f.drop_reason_desc)));
  add(set('reply'), byReply);
  add(set('encrypted'), (v) => () => v.includes(false));
  add(set('source_identity'), (v) => (f) => v.includes(f.source.identity));
  add(set('destination_identity'), (v) => (f) => v.includes(f.destination.identity));
  add(set('protocol'), byProtocol);
  add(set('source_ip'), (v) => byIPs('source_ip', v, (f) => f.IP.source));
  add(set('destination_ip'), (v) => byIPs('destination_ip', v, (f) => f.IP.destination));
  add(set('source_pod'), (v) => byNamespacedName('source_pod', v, (f) => ({ ns: f.source.namespace, name: f.source.pod_name })));
  add(set('destination_pod'), (v) => byNamespacedName('destination_pod', v, (f) => ({ ns: f.destination.namespace, name: f.destination.pod_name })));
  add(set('source_workload'), (v) => byWorkload(v, src));
  add(set('destination_workload'), (v) => byWorkload(v, dst));
  add(set('source_label'), (v) => byLabels('source_label', v, (f) => f.source.labels));
  add(set('destination_label'), (v) => byLabels('destination_label', v, (f) => f.destination.labels));
  add(set('node_labels'), (v) => byLabels('node_labels', v, () => []));
  add(set('source_port'), (v) => byPort('source_port', v, 'src'));
  add(set('destination_port'), (v) => byPort('destination_port', v, 'dst'));
  add(set('tcp_flags'), byTcpFlags);
  add(set('node_name'), byNodeName);
  add(set('source_cluster_name'), (v) => byClusterName('source_cluster_name', v, src));
  add(set('destination_cluster_name'), (v) => byClusterName('destination_cluster_name', v, dst));
  add(set('ip_version'), (v) => (f) => v.includes(f.IP.ipVersion));
  add(set('traffic_direction'), (v) => (f) => v.includes(f.traffic_direction));
  add(set('interface'), byInterface);
  for (const field of NEVER_SET) add(set(field), () => () => false);
  if ((ff.experimental?.cel_expression.length ?? 0) > 0) throw new FlowFilterError('experimental.cel_expression', 'CEL expressions are not supported by cilium-ts');
  return (f) => checks.every((c) => c(f));
}

/** The request's whitelist and blacklist as one predicate. */
export function compileFilters(whitelist: readonly Partial<FlowFilter>[], blacklist: readonly Partial<FlowFilter>[]): FlowPredicate {
  const allow = whitelist.map(compileFilter);
  const deny = blacklist.map(compileFilter);
  return (f) => (allow.length === 0 || allow.some((p) => p(f))) && !deny.some((p) => p(f));
}
