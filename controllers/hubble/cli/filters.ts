// The flow filter flags of `hubble observe` turned into the request's FlowFilters exactly as
// upstream's CLI does (hubble/cmd/observe/flows_filter.go): flags apply in the order given; a
// flag about either side (--pod, --ip, --label, ...) makes two filters, source and destination
// ("left OR right"); --not sends the next flag to the denylist; namespaces apply to the pod and
// service filters last; flags of one conflict group refuse each other.
import { RESERVED_IDENTITIES } from '../../agent/identity/reserved.js';
import { identityName } from '../../cli/text/labels.js';
import { enumNames } from '../protos.js';
import { toProtoJson } from './protojson.js';

export type FlowFilterObject = Record<string, unknown>;
type Update = (f: FlowFilterObject) => void;

/** A flag value upstream refuses; the message is pflag's "invalid argument" line. */
export class FilterFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterFlagError';
  }
}

const CONFLICTS: readonly (readonly string[])[] = [
  ['from-fqdn', 'from-ip', 'ip', 'fqdn', 'from-namespace', 'namespace', 'from-all-namespaces', 'all-namespaces'],
  ['from-fqdn', 'from-ip', 'ip', 'fqdn', 'from-pod', 'pod'],
  ['to-fqdn', 'to-ip', 'ip', 'fqdn', 'to-namespace', 'namespace', 'to-all-namespaces', 'all-namespaces'],
  ['to-fqdn', 'to-ip', 'ip', 'fqdn', 'to-pod', 'pod'],
  ['to-pod', 'namespace', 'all-namespaces'],
  ['from-pod', 'namespace', 'all-namespaces'],
  ['to-service', 'namespace', 'all-namespaces'],
  ['from-service', 'namespace', 'all-namespaces'],
  ['snat-ip'],
  ['label', 'from-label'],
  ['label', 'to-label'],
  ['service', 'from-service'],
  ['service', 'to-service'],
  ['verdict'],
  ['drop-reason-desc'],
  ['type'],
  ['http-status'],
  ['http-method'],
  ['http-path'],
  ['http-url'],
  ['http-header'],
  ['protocol'],
  ['port', 'to-port'],
  ['port', 'from-port'],
  ['identity', 'to-identity'],
  ['identity', 'from-identity'],
  ['workload', 'to-workload'],
  ['workload', 'from-workload'],
  ['node-label'],
  ['tcp-flags'],
  ['uuid'],
  ['traffic-direction'],
  ['cel-expression'],
  ['encrypted', 'unencrypted'],
  ['reply', 'not-reply'],
];

/** Upstream pkg/monitor/api MessageTypeNames. */
export const MESSAGE_TYPES: Readonly<Record<string, number>> = { drop: 1, debug: 2, capture: 3, trace: 4, 'policy-verdict': 5, 'trace-sock': 7, l7: 129, agent: 130 };
const TRACE_POINTS = ['to-endpoint', 'to-proxy', 'to-host', 'to-stack', 'to-overlay', 'from-endpoint', 'from-proxy', 'from-host', 'from-stack', 'from-overlay', 'from-network', 'to-network', 'from-crypto', 'to-crypto'];
const AGENT_SUBTYPES: Readonly<Record<string, number>> = {
  unspecified: 0,
  message: 1,
  'agent-started': 2,
  'endpoint-regenerate-success': 3,
  'endpoint-regenerate-failure': 4,
  'policy-updated': 5,
  'policy-deleted': 6,
  'endpoint-created': 7,
  'endpoint-deleted': 8,
  'ipcache-upserted': 9,
  'ipcache-deleted': 10,
};
const TCP_FLAGS = ['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];
const MAX_NUMERIC_IDENTITY = 0xffffffff;
// Upstream GetAllReservedIdentities: 1..14 in order.
const RESERVED_NAMES = Array.from({ length: 14 }, (_, i) => identityName(i + 1));

const push = (f: FlowFilterObject, field: string, v: unknown) => {
  f[field] = [...((f[field] as unknown[] | undefined) ?? []), v];
};

/** Go's strconv.ParseUint(s, 0, bits): decimal, 0x, 0o/0 and 0b prefixes, underscores between digits. */
function parseUint(s: string, max: number): number | undefined {
  const t = s.replaceAll('_', '');
  const m = /^(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[0-9]+)$/.exec(t);
  if (m === null || s.startsWith('_') || s.endsWith('_')) return undefined;
  const n = /^0[0-7]+$/.test(t) ? parseInt(t.slice(1), 8) : /^0[oO]/.test(t) ? parseInt(t.slice(2), 8) : Number(t);
  return Number.isSafeInteger(n) && n <= max ? n : undefined;
}

function parseIdentity(v: string): number {
  const reserved = (RESERVED_IDENTITIES as Record<string, number>)[v];
  if (reserved !== undefined) return reserved;
  const n = parseUint(v, MAX_NUMERIC_IDENTITY);
  if (n === undefined) throw new FilterFlagError(`invalid security identity, expected one of [${RESERVED_NAMES.join(' ')}] or a numeric value`);
  return n;
}

function parseWorkload(s: string): { kind: string; name: string } {
  if (s === '') return { kind: '', name: '' };
  const slash = s.indexOf('/');
  return slash < 0 ? { kind: '', name: s } : { kind: s.slice(0, slash), name: s.slice(slash + 1) };
}

function ipVersion(v: string): string {
  const l = v.toLowerCase();
  if (['4', 'v4', 'ipv4', 'ip4'].includes(l)) return 'IPv4';
  if (['6', 'v6', 'ipv6', 'ip6'].includes(l)) return 'IPv6';
  return 'IP_NOT_USED';
}

function namespaceFromName(name: string): string {
  const parts = name.split('/');
  return parts.length > 1 ? parts[0]! : '';
}

function addNamespaces(filter: string[] | undefined, ns: readonly string[]): string[] | undefined {
  if (ns.length === 0 || filter === undefined || filter.length === 0) return filter;
  return filter.flatMap((f) => (f.includes('/') ? [f] : ns.map((n) => `${n}/${f}`)));
}

const sameFilter = (a: FlowFilterObject, b: FlowFilterObject) => JSON.stringify(toProtoJson('flow.FlowFilter', a)) === JSON.stringify(toProtoJson('flow.FlowFilter', b));

class FilterTracker {
  left?: FlowFilterObject;
  right?: FlowFilterObject;
  ns: string[] = [];
  srcNs: string[] = [];
  dstNs: string[] = [];
  readonly changed: string[] = [];

  apply(u: Update): void {
    this.applyLeft(u);
    this.applyRight(u);
  }
  applyLeft(u: Update): void {
    u((this.left ??= {}));
  }
  applyRight(u: Update): void {
    u((this.right ??= {}));
  }

  private applySide(ff: FlowFilterObject, ns: readonly string[], side: 'source' | 'destination'): void {
    const pods = `${side}_pod`;
    const services = `${side}_service`;
    if (((ff[pods] as string[] | undefined) ?? []).length === 0 && ((ff[services] as string[] | undefined) ?? []).length === 0) ff[pods] = [''];
    for (const field of [pods, services]) {
      const v = addNamespaces(ff[field] as string[] | undefined, ns);
      if (v !== undefined) ff[field] = v;
    }
  }

  flowFilters(): FlowFilterObject[] {
    if (this.left === undefined && this.right === undefined && this.ns.length === 0 && this.srcNs.length === 0 && this.dstNs.length === 0) return [];
    const left = (this.left ??= {});
    const right = (this.right ??= {});
    if (this.dstNs.length > 0) for (const f of [left, right]) this.applySide(f, this.dstNs, 'destination');
    if (this.srcNs.length > 0) for (const f of [left, right]) this.applySide(f, this.srcNs, 'source');
    if (this.ns.length > 0) {
      this.applySide(left, this.ns, 'source');
      this.applySide(right, this.ns, 'destination');
    }
    return sameFilter(left, right) ? [left] : [left, right];
  }

  checkNamespaceConflicts(ff: FlowFilterObject | undefined): void {
    if (ff === undefined) return;
    const names = (field: string) => (ff[field] as string[] | undefined) ?? [];
    const conflicts = (nss: readonly string[], list: string[]) => {
      for (const ns of nss) for (const name of list) if (namespaceFromName(name) !== '' && namespaceFromName(name) !== ns) throw new FilterFlagError(`namespace conflict: ${JSON.stringify(ns)} does not contain ${JSON.stringify(name)}`);
    };
    conflicts(this.ns, names('source_pod'));
    conflicts(this.ns, names('source_service'));
    conflicts(this.ns, names('destination_pod'));
    conflicts(this.ns, names('destination_service'));
    conflicts(this.srcNs, names('source_pod'));
    conflicts(this.srcNs, names('source_service'));
    conflicts(this.dstNs, names('destination_pod'));
    conflicts(this.dstNs, names('destination_service'));
    for (const side of ['source', 'destination']) {
      for (const pod of names(`${side}_pod`)) {
        const podNs = namespaceFromName(pod);
        if (podNs === '') continue;
        for (const svc of names(`${side}_service`)) if (namespaceFromName(svc) !== podNs) throw new FilterFlagError(`namespace of service ${JSON.stringify(svc)} conflict with pod ${JSON.stringify(podNs)}`);
      }
    }
  }
}

/** Every filter flag name this builder takes (upstream's, without the leading dashes). */
export const FILTER_FLAGS = [
  'uuid',
  'fqdn',
  'from-fqdn',
  'to-fqdn',
  'pod',
  'from-pod',
  'to-pod',
  'ip',
  'from-ip',
  'to-ip',
  'snat-ip',
  'ipv4',
  'ipv6',
  'ip-version',
  'label',
  'from-label',
  'to-label',
  'namespace',
  'from-namespace',
  'to-namespace',
  'all-namespaces',
  'from-all-namespaces',
  'to-all-namespaces',
  'service',
  'from-service',
  'to-service',
  'port',
  'from-port',
  'to-port',
  'trace-id',
  'ip-trace-id',
  'verdict',
  'drop-reason-desc',
  'http-status',
  'http-method',
  'http-path',
  'http-url',
  'http-header',
  'type',
  'protocol',
  'workload',
  'from-workload',
  'to-workload',
  'identity',
  'from-identity',
  'to-identity',
  'node-name',
  'node-label',
  'cluster',
  'from-cluster',
  'to-cluster',
  'tcp-flags',
  'traffic-direction',
  'cel-expression',
  'interface',
  'encrypted',
  'unencrypted',
  'reply',
  'not-reply',
] as const;

// Flags about either end: the left filter takes the source field, the right the destination.
const EITHER: Readonly<Record<string, [string, string]>> = {
  fqdn: ['source_fqdn', 'destination_fqdn'],
  pod: ['source_pod', 'destination_pod'],
  ip: ['source_ip', 'destination_ip'],
  label: ['source_label', 'destination_label'],
  service: ['source_service', 'destination_service'],
  port: ['source_port', 'destination_port'],
  cluster: ['source_cluster_name', 'destination_cluster_name'],
};
// Flags that set one field of both filters, with the value as given.
const BOTH: Readonly<Record<string, string>> = {
  uuid: 'uuid',
  'from-fqdn': 'source_fqdn',
  'to-fqdn': 'destination_fqdn',
  'from-pod': 'source_pod',
  'to-pod': 'destination_pod',
  'from-ip': 'source_ip',
  'to-ip': 'destination_ip',
  'snat-ip': 'source_ip_xlated',
  'from-label': 'source_label',
  'to-label': 'destination_label',
  'from-service': 'source_service',
  'to-service': 'destination_service',
  'from-port': 'source_port',
  'to-port': 'destination_port',
  'trace-id': 'trace_id',
  'http-status': 'http_status_code',
  'http-method': 'http_method',
  'http-path': 'http_path',
  'http-url': 'http_url',
  protocol: 'protocol',
  'node-name': 'node_name',
  'node-label': 'node_labels',
  'from-cluster': 'source_cluster_name',
  'to-cluster': 'destination_cluster_name',
};

export class FlowFilterFlags {
  private whitelist?: FilterTracker;
  private blacklist?: FilterTracker;
  private blacklisting = false;

  /** One flag as given on the command line, in order. */
  set(name: string, val: string): void {
    if (name === 'not') {
      if (this.blacklisting) throw new FilterFlagError('consecutive --not statements');
      this.blacklisting = true;
      return;
    }
    if (this.blacklisting) {
      this.blacklisting = false;
      this.apply((this.blacklist ??= new FilterTracker()), name, val);
    } else {
      this.apply((this.whitelist ??= new FilterTracker()), name, val);
    }
  }

  /** The request's allowlist and denylist; a trailing --not is refused. */
  filters(): { whitelist: FlowFilterObject[]; blacklist: FlowFilterObject[] } {
    if (this.blacklisting) throw new FilterFlagError('trailing --not found in the arguments');
    return { whitelist: this.whitelist?.flowFilters() ?? [], blacklist: this.blacklist?.flowFilters() ?? [] };
  }

  private apply(t: FilterTracker, name: string, val: string): void {
    const first = !t.changed.includes(name);
    if (first) t.changed.push(name);
    for (const group of CONFLICTS) {
      for (const flag of group) {
        if (!t.changed.includes(flag)) continue;
        const other = group.find((c) => c !== flag && t.changed.includes(c));
        if (other !== undefined) throw new FilterFlagError(`filters --${flag} and --${other} cannot be combined`);
      }
    }
    this.update(t, name, val, first);
    t.checkNamespaceConflicts(t.left);
    t.checkNamespaceConflicts(t.right);
  }

  private update(t: FilterTracker, name: string, val: string, first: boolean): void {
    const either = EITHER[name];
    if (either !== undefined) {
      t.applyLeft((f) => push(f, either[0], val));
      t.applyRight((f) => push(f, either[1], val));
      return;
    }
    const both = BOTH[name];
    if (both !== undefined) return t.apply((f) => push(f, both, val));
    switch (name) {
      case 'ipv4':
        return t.apply((f) => push(f, 'ip_version', 'IPv4'));
      case 'ipv6':
        return t.apply((f) => push(f, 'ip_version', 'IPv6'));
      case 'ip-version':
        return t.apply((f) => push(f, 'ip_version', ipVersion(val)));
      case 'namespace':
        return void t.ns.push(val);
      case 'from-namespace':
        return void t.srcNs.push(val);
      case 'to-namespace':
        return void t.dstNs.push(val);
      case 'all-namespaces':
        return void t.ns.push('');
      case 'from-all-namespaces':
        return void t.srcNs.push('');
      case 'to-all-namespaces':
        return void t.dstNs.push('');
      case 'ip-trace-id': {
        if (val === '0') throw new FilterFlagError('invalid --ip-trace-id value; must be greater than 0');
        if (!/^[0-9]+$/.test(val) || BigInt(val) > 0xffffffffffffffffn) throw new FilterFlagError(`invalid --ip-trace-id value: strconv.ParseUint: parsing ${JSON.stringify(val)}: invalid syntax`);
        return t.apply((f) => push(f, 'ip_trace_id', val));
      }
      case 'verdict': {
        if (first) t.apply((f) => delete f.verdict);
        if (![...enumNames('flow.Verdict').values()].includes(val)) throw new FilterFlagError(`invalid --verdict value: ${val}`);
        return t.apply((f) => push(f, 'verdict', val));
      }
      case 'drop-reason-desc': {
        if (val === '') throw new FilterFlagError('empty --drop-reason-desc value');
        if (![...enumNames('flow.DropReason').values()].includes(val)) throw new FilterFlagError(`invalid --drop-reason-desc value: ${val}`);
        return t.apply((f) => push(f, 'drop_reason_desc', val));
      }
      case 'http-header': {
        const colon = val.indexOf(':');
        if (colon < 0) throw new FilterFlagError(`invalid http-header value ${JSON.stringify(val)}, expected name:value`);
        return t.apply((f) => push(f, 'http_header', { key: val.slice(0, colon), value: val.slice(colon + 1) }));
      }
      case 'type': {
        if (first) t.apply((f) => delete f.event_type);
        const filter = eventTypeFilter(val);
        return t.apply((f) => push(f, 'event_type', filter));
      }
      case 'workload':
        t.applyLeft((f) => push(f, 'source_workload', parseWorkload(val)));
        return t.applyRight((f) => push(f, 'destination_workload', parseWorkload(val)));
      case 'from-workload':
        return t.apply((f) => push(f, 'source_workload', parseWorkload(val)));
      case 'to-workload':
        return t.apply((f) => push(f, 'destination_workload', parseWorkload(val)));
      case 'identity': {
        const id = parseIdentity(val);
        t.applyLeft((f) => push(f, 'source_identity', id));
        return t.applyRight((f) => push(f, 'destination_identity', id));
      }
      case 'from-identity': {
        const id = parseIdentity(val);
        return t.apply((f) => push(f, 'source_identity', id));
      }
      case 'to-identity': {
        const id = parseIdentity(val);
        return t.apply((f) => push(f, 'destination_identity', id));
      }
      case 'tcp-flags': {
        const flags: Record<string, boolean> = {};
        for (const flag of val.split(',')) {
          if (!TCP_FLAGS.includes(flag.toUpperCase())) throw new FilterFlagError(`unknown tcp flag: ${flag}`);
          flags[flag.toUpperCase()] = true;
        }
        return t.apply((f) => push(f, 'tcp_flags', flags));
      }
      case 'traffic-direction': {
        const td = val.toLowerCase();
        if (td !== 'ingress' && td !== 'egress') throw new FilterFlagError(`${td}: invalid traffic direction, expected ingress or egress`);
        return t.apply((f) => push(f, 'traffic_direction', td.toUpperCase()));
      }
      case 'cel-expression':
        return t.apply((f) => {
          const exp = (f.experimental ??= { cel_expression: [] }) as { cel_expression: string[] };
          exp.cel_expression.push(val);
        });
      case 'interface':
        return t.apply((f) => push(f, 'interface', { index: 0, name: val }));
      case 'encrypted':
        return t.apply((f) => push(f, 'encrypted', true));
      case 'unencrypted':
        return t.apply((f) => push(f, 'encrypted', false));
      case 'reply':
        return t.apply((f) => push(f, 'reply', true));
      case 'not-reply':
        return t.apply((f) => push(f, 'reply', false));
      default:
        throw new FilterFlagError(`unknown filter flag --${name}`);
    }
  }
}

function eventTypeFilter(val: string): { type: number; match_sub_type: boolean; sub_type: number } {
  const colon = val.indexOf(':');
  const [typeText, subText] = colon < 0 ? [val, undefined] : [val.slice(0, colon), val.slice(colon + 1)];
  let type = MESSAGE_TYPES[typeText];
  if (type === undefined) {
    const n = parseUint(typeText, 0xffffffff);
    if (n === undefined) throw new FilterFlagError(`unable to parse type '${typeText}', not a known type name and unable to parse as numeric value: strconv.ParseUint: parsing ${JSON.stringify(typeText)}: invalid syntax`);
    type = n;
  }
  const filter = { type, match_sub_type: false, sub_type: 0 };
  if (subText === undefined) return filter;
  // Sub-type names count only after a type name (upstream switches on the name's value, 0 for a number).
  const byName = MESSAGE_TYPES[typeText];
  const named = byName === MESSAGE_TYPES.trace ? TRACE_POINTS.indexOf(subText) : byName === MESSAGE_TYPES.agent ? (AGENT_SUBTYPES[subText] ?? -1) : -1;
  if (named >= 0) return { type, match_sub_type: true, sub_type: named };
  const n = parseUint(subText, 0xffffffff);
  if (n === undefined) throw new FilterFlagError(`unable to parse event sub-type '${subText}', not a known sub-type name and unable to parse as numeric value: strconv.ParseUint: parsing ${JSON.stringify(subText)}: invalid syntax`);
  return { type, match_sub_type: true, sub_type: n };
}
