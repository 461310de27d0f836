import { expect } from 'chai';
import { eventToFlow } from './decode.js';
import { compileFilter, compileFilters, FlowFilterError } from './filter.js';
import type { Endpoint, Flow, FlowFilter } from './flow-types.js';
import { LabelSelector, LabelSelectorError } from './label-selector.js';

const ep = (id: number, identity: number, ns: string, pod: string, labels: string[], workloads: Endpoint['workloads'] = []): Endpoint => ({
  ID: id,
  identity,
  cluster_name: 'default',
  namespace: ns,
  labels,
  pod_name: pod,
  workloads,
});
const CLIENT = ep(0, 5000, 'shop', 'client-7d9f', ['k8s:app=client', 'k8s:tier=front']);
const SERVER = ep(12, 4242, 'shop', 'cart-5c4b', ['k8s:app=cart', 'k8s:tier=back'], [{ kind: 'Deployment', name: 'cart' }]);
const WORLD = ep(0, 2, '', '', ['reserved:world']);
const byIp: Record<string, Endpoint> = { '10.0.1.5': CLIENT, '10.0.0.2': SERVER, '1.1.1.1': WORLD };
const ctx = { nodeName: 'node-a', endpoint: (ip: string) => byIp[ip]!, policy: () => undefined, interfaceOf: () => ({ index: 33, name: 'lxc0' }) };
const base = { endpointId: 12, srcIdentity: 0, dstIdentity: 0 };
const at = { timeMs: 1_700_000_000_000, uuid: 'uuid-drop' };

const drop = eventToFlow({ type: 'drop', ...base, reason: 133, direction: 'ingress', cookie: 0, packet: { srcIp: '10.0.1.5', dstIp: '10.0.0.2', protocol: 6, srcPort: 40000, dstPort: 8080, flags: 0x02 } }, at, ctx);
const reply = eventToFlow({ type: 'trace', ...base, observationPoint: 0, ctState: 3, packet: { srcIp: '1.1.1.1', dstIp: '10.0.0.2', protocol: 6, srcPort: 443, dstPort: 50000, flags: 0x12 } }, { ...at, uuid: 'uuid-reply' }, ctx);
const ping = eventToFlow({ type: 'trace', ...base, observationPoint: 5, ctState: 1, packet: { srcIp: '10.0.0.2', dstIp: '1.1.1.1', protocol: 1, srcPort: 0, dstPort: 0, flags: 0x0800 } }, { ...at, uuid: 'uuid-ping' }, ctx);
const verdict = eventToFlow({ type: 'policy-verdict', ...base, direction: 'ingress', verdict: 0, matchType: 2, cookie: 0, packet: { srcIp: '10.0.1.5', dstIp: '10.0.0.2', protocol: 17, srcPort: 999, dstPort: 53, flags: 0 } }, { ...at, uuid: 'uuid-udp' }, ctx);
const ALL = [drop, reply, ping, verdict];

function matching(ff: Partial<FlowFilter>): string[] {
  const p = compileFilter(ff);
  return ALL.filter(p).map((f: Flow) => f.uuid);
}

describe('hubble FlowFilter matching', () => {
  const cases: [string, Partial<FlowFilter>, string[]][] = [
    ['uuid', { uuid: ['uuid-ping', 'nope'] }, ['uuid-ping']],
    ['source_ip exact', { source_ip: ['10.0.1.5'] }, ['uuid-drop', 'uuid-udp']],
    ['destination_ip CIDR', { destination_ip: ['1.0.0.0/8'] }, ['uuid-ping']],
    ['source_pod namespace/prefix', { source_pod: ['shop/client'] }, ['uuid-drop', 'uuid-udp']],
    ['source_pod whole namespace', { source_pod: ['shop/'] }, ['uuid-drop', 'uuid-ping', 'uuid-udp']],
    ['destination_pod prefix in any namespace', { destination_pod: ['cart-'] }, ['uuid-drop', 'uuid-reply', 'uuid-udp']],
    ['source_label selector without source', { source_label: ['app=client'] }, ['uuid-drop', 'uuid-udp']],
    ['source_label with source and set', { source_label: ['k8s:tier in (back, middle)'] }, ['uuid-ping']],
    ['source_label reserved', { source_label: ['reserved:world'] }, ['uuid-reply']],
    ['destination_label negation', { destination_label: ['!reserved:world,tier!=front'] }, ['uuid-drop', 'uuid-reply', 'uuid-udp']],
    ['source_identity', { source_identity: [2] }, ['uuid-reply']],
    ['destination_identity', { destination_identity: [4242] }, ['uuid-drop', 'uuid-reply', 'uuid-udp']],
    ['verdict', { verdict: ['DROPPED'] }, ['uuid-drop']],
    ['drop_reason_desc', { drop_reason_desc: ['POLICY_DENIED'] }, ['uuid-drop']],
    ['drop_reason_desc of another reason', { drop_reason_desc: ['POLICY_DENY'] }, []],
    ['event_type drop', { event_type: [{ type: 1, match_sub_type: false, sub_type: 0 }] }, ['uuid-drop']],
    ['event_type trace from-endpoint', { event_type: [{ type: 4, match_sub_type: true, sub_type: 5 }] }, ['uuid-ping']],
    ['event_type policy-verdict', { event_type: [{ type: 5, match_sub_type: false, sub_type: 0 }] }, ['uuid-udp']],
    ['protocol', { protocol: ['ICMP', 'udp'] }, ['uuid-ping', 'uuid-udp']],
    ['source_port', { source_port: ['443'] }, ['uuid-reply']],
    ['destination_port', { destination_port: ['8080', '53'] }, ['uuid-drop', 'uuid-udp']],
    ['traffic_direction', { traffic_direction: ['EGRESS'] }, ['uuid-reply', 'uuid-ping']],
    ['node_name exact', { node_name: ['node-a'] }, ['uuid-drop', 'uuid-reply', 'uuid-ping', 'uuid-udp']],
    ['node_name pattern with cluster', { node_name: ['default/node-*'] }, ['uuid-drop', 'uuid-reply', 'uuid-ping', 'uuid-udp']],
    ['node_name other', { node_name: ['other/node-a', 'node-b'] }, []],
    ['tcp_flags SYN', { tcp_flags: [{ SYN: true }] }, ['uuid-drop', 'uuid-reply']],
    ['tcp_flags SYN+ACK', { tcp_flags: [{ SYN: true, ACK: true }] }, ['uuid-reply']],
    ['reply true', { reply: [true] }, ['uuid-reply']],
    ['reply false (a drop counts as not a reply)', { reply: [false] }, ['uuid-drop', 'uuid-ping', 'uuid-udp']],
    ['destination_workload', { destination_workload: [{ kind: 'Deployment', name: '' }] }, ['uuid-drop', 'uuid-reply', 'uuid-udp']],
    ['source_cluster_name', { source_cluster_name: ['default'] }, ['uuid-drop', 'uuid-reply', 'uuid-ping', 'uuid-udp']],
    ['ip_version', { ip_version: ['IPv6'] }, []],
    ['interface by name', { interface: [{ index: 0, name: 'lxc0' }] }, ['uuid-reply', 'uuid-ping']],
    ['L7 fields match no L3/L4 flow', { http_method: ['GET'] }, []],
    ['fields AND within a filter', { source_pod: ['shop/'], verdict: ['FORWARDED'], protocol: ['udp'] }, ['uuid-udp']],
    ['empty filter matches all', {}, ['uuid-drop', 'uuid-reply', 'uuid-ping', 'uuid-udp']],
  ];
  for (const [what, ff, want] of cases) {
    it(what, () => expect(matching(ff)).to.deep.equal(want));
  }

  it('whitelist: any filter; blacklist: none', () => {
    const p = compileFilters([{ verdict: ['DROPPED'] }, { protocol: ['icmp'] }], [{ source_pod: ['shop/client'] }]);
    expect(ALL.filter(p).map((f) => f.uuid)).to.deep.equal(['uuid-ping']);
    expect(ALL.filter(compileFilters([], [])).length).to.equal(4);
  });

  it('refuses bad values, naming the field', () => {
    const bad: [Partial<FlowFilter>, RegExp][] = [
      [{ source_ip: ['10.0.0.300'] }, /source_ip: "10.0.0.300" is not an IP address/],
      [{ destination_ip: ['10.0.0.0/33'] }, /destination_ip: .* is not an IP prefix/],
      [{ source_port: ['http'] }, /source_port: "http" is not a port/],
      [{ protocol: ['gre'] }, /protocol: unknown protocol: "gre"/],
      [{ source_pod: [''] }, /source_pod: name must not be empty/],
      [{ node_name: ['a/b/c'] }, /node_name: .* too many slashes/],
      [{ node_name: ['NODE!'] }, /node_name: .* invalid character "!"/],
      [{ source_label: ['app in (a'] }, /source_label: label selector/],
      [{ experimental: { cel_expression: ['true'] } }, /cel_expression/],
    ];
    for (const [ff, msg] of bad) expect(() => compileFilter(ff), JSON.stringify(ff)).to.throw(FlowFilterError, msg);
  });

  it('label selectors: operators and sources', () => {
    const labels = ['k8s:app=web', 'k8s:version=3', 'reserved:host'];
    const m = (s: string) => new LabelSelector(s).matches(labels);
    expect(m('')).to.equal(true);
    expect(m('app=web,version==3')).to.equal(true);
    expect(m('k8s:app=web')).to.equal(true);
    expect(m('cidr:app=web')).to.equal(false);
    expect(m('app!=web')).to.equal(false);
    expect(m('missing!=x')).to.equal(true);
    expect(m('app notin (db)')).to.equal(true);
    expect(m('host')).to.equal(true);
    expect(m('!host')).to.equal(false);
    expect(m('version>2,version<4')).to.equal(true);
    expect(() => new LabelSelector('version>x')).to.throw(LabelSelectorError, /needs an integer/);
    expect(() => new LabelSelector('a b c')).to.throw(LabelSelectorError, /cannot parse/);
  });
});
