import { expect } from 'chai';
import { decodeEvent } from '../../datapath/maps/events.js';
import type { DatapathEvent, PacketSummary } from '../../datapath/types.js';
import { dropReasonDesc, eventToFlow, type FlowContext, icmpSummary, observationPoint, tcpFlags } from './decode.js';
import type { Endpoint, Policy } from './flow-types.js';

const CLIENT = '10.0.1.5';
const SERVER = '10.0.0.2';
const SERVER_EP = 12;

function endpoint(id: number, identity: number, pod: string): Endpoint {
  return { ID: id, identity, cluster_name: 'default', namespace: 'ns1', labels: [`k8s:app=${pod}`], pod_name: pod, workloads: [] };
}

const DENY_ICMP: Policy = { kind: 'CiliumNetworkPolicy', namespace: 'ns1', name: 'deny-icmp', labels: [], revision: '3' };
const ALLOW_WEB: Policy = { kind: 'CiliumClusterwideNetworkPolicy', namespace: '', name: 'allow-web', labels: [], revision: '3' };

const ctx: FlowContext = {
  nodeName: 'node-a',
  // The identity the datapath reported wins, as upstream's resolver does.
  endpoint: (ip, identity) => (ip === SERVER ? endpoint(SERVER_EP, identity || 4242, 'server') : endpoint(0, identity, 'client')),
  policy: (cookie) => ({ 77: DENY_ICMP, 88: ALLOW_WEB })[cookie],
  interfaceOf: (id) => (id === SERVER_EP ? { index: 33, name: 'lxc0123' } : undefined),
};

const tcp = (flags: number, from = CLIENT, to = SERVER, sport = 40000, dport = 8080): PacketSummary => ({ srcIp: from, dstIp: to, protocol: 6, srcPort: sport, dstPort: dport, flags });
const icmp = (type: number, code: number): PacketSummary => ({ srcIp: CLIENT, dstIp: SERVER, protocol: 1, srcPort: 0, dstPort: 0, flags: (type << 8) | code });
const base = { endpointId: SERVER_EP, srcIdentity: 5000, dstIdentity: 4242 };
const decode = (ev: DatapathEvent) => eventToFlow(ev, { timeMs: 1_700_000_000_123.5, uuid: 'u-1' }, ctx);

describe('hubble decode: datapath event → flow.Flow', () => {
  it('a policy drop of a TCP SYN: DROPPED, POLICY_DENIED, ingress, flags, summary, enriched endpoints', () => {
    const f = decode({ type: 'drop', ...base, reason: 133, direction: 'ingress', cookie: 0, packet: tcp(0x02) });
    expect(f).to.deep.include({
      uuid: 'u-1',
      verdict: 'DROPPED',
      drop_reason: 133,
      drop_reason_desc: 'POLICY_DENIED',
      IP: { source: CLIENT, destination: SERVER, ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } },
      Type: 'L3_L4',
      node_name: 'node-a',
      event_type: { type: 1, sub_type: 133 },
      traffic_direction: 'INGRESS',
      Summary: 'TCP Flags: SYN',
    });
    expect(f.time).to.deep.equal({ seconds: '1700000000', nanos: 123_500_000 });
    expect(f.source).to.deep.equal(endpoint(0, 5000, 'client'));
    expect(f.destination).to.deep.equal(endpoint(SERVER_EP, 4242, 'server'));
    expect(f.is_reply, 'a drop has no known direction of the connection').to.equal(undefined);
    expect(f.ingress_denied_by, 'no entry decided (cookie 0)').to.equal(undefined);
    expect(f.interface, 'only traces carry the interface, as upstream').to.equal(undefined);
  });

  it('a deny-list drop names the policy of its rule cookie in the drop direction', () => {
    const ingress = decode({ type: 'drop', ...base, reason: 181, direction: 'ingress', cookie: 77, packet: icmp(8, 0) });
    expect(ingress).to.deep.include({ drop_reason_desc: 'POLICY_DENY', l4: { ICMPv4: { type: 8, code: 0 } }, Summary: 'ICMPv4 EchoRequest', ingress_denied_by: [DENY_ICMP] });
    const egress = decode({ type: 'drop', ...base, reason: 181, direction: 'egress', cookie: 77, packet: icmp(8, 0) });
    expect(egress).to.deep.include({ traffic_direction: 'EGRESS', egress_denied_by: [DENY_ICMP] });
    expect(egress.ingress_denied_by).to.equal(undefined);
    const unknownCookie = decode({ type: 'drop', ...base, reason: 181, direction: 'ingress', cookie: 5, packet: icmp(8, 0) });
    expect(unknownCookie.ingress_denied_by).to.equal(undefined);
  });

  const traces: { what: string; point: number; ct: number; packet: PacketSummary; want: object }[] = [
    { what: 'new flow delivered to the endpoint', point: 0, ct: 1, packet: tcp(0x02), want: { trace_observation_point: 'TO_ENDPOINT', trace_reason: 'NEW', is_reply: { value: false }, traffic_direction: 'INGRESS', event_type: { type: 4, sub_type: 0 } } },
    { what: 'new flow sent by the endpoint', point: 5, ct: 1, packet: tcp(0x02, SERVER, CLIENT, 8080, 40000), want: { trace_observation_point: 'FROM_ENDPOINT', trace_reason: 'NEW', is_reply: { value: false }, traffic_direction: 'EGRESS', event_type: { type: 4, sub_type: 5 } } },
    { what: 'reply delivered to the endpoint (its own egress flow)', point: 0, ct: 3, packet: tcp(0x12), want: { trace_reason: 'REPLY', is_reply: { value: true }, traffic_direction: 'EGRESS', Summary: 'TCP Flags: SYN, ACK' } },
    { what: 'related ICMP error sent by the endpoint', point: 5, ct: 4, packet: { ...icmp(3, 3), srcIp: SERVER, dstIp: CLIENT }, want: { trace_reason: 'RELATED', traffic_direction: 'EGRESS', Summary: 'ICMPv4 DestinationUnreachable(Port)' } },
    { what: 'established', point: 0, ct: 2, packet: tcp(0x10), want: { trace_reason: 'ESTABLISHED', traffic_direction: 'INGRESS', Summary: 'TCP Flags: ACK' } },
    { what: 'unknown ct state', point: 0, ct: 0, packet: tcp(0x10), want: { trace_reason: 'TRACE_REASON_UNKNOWN', traffic_direction: 'TRAFFIC_DIRECTION_UNKNOWN' } },
  ];
  for (const t of traces) {
    it(`trace: ${t.what}`, () => {
      const f = decode({ type: 'trace', ...base, observationPoint: t.point, ctState: t.ct, packet: t.packet });
      expect(f).to.deep.include({ verdict: 'FORWARDED', interface: { index: 33, name: 'lxc0123' }, ...t.want });
      expect(f.drop_reason_desc).to.equal(undefined);
    });
  }

  it('policy verdicts: allowed names the allowing policy, denied the denying one, with match type', () => {
    const allowed = decode({ type: 'policy-verdict', ...base, direction: 'ingress', verdict: 0, matchType: 2, cookie: 88, packet: tcp(0x02) });
    expect(allowed).to.deep.include({ verdict: 'FORWARDED', policy_match_type: 2, traffic_direction: 'INGRESS', is_reply: { value: false }, event_type: { type: 5, sub_type: 0 }, ingress_allowed_by: [ALLOW_WEB] });
    const denied = decode({ type: 'policy-verdict', ...base, direction: 'egress', verdict: 181, matchType: 3, cookie: 77, packet: tcp(0x02) });
    expect(denied).to.deep.include({ verdict: 'DROPPED', drop_reason: 181, drop_reason_desc: 'POLICY_DENY', traffic_direction: 'EGRESS', egress_denied_by: [DENY_ICMP] });
    expect(denied.is_reply).to.equal(undefined);
  });

  it('traces at the tunnel: FROM_OVERLAY/TO_OVERLAY with the sender identity, no endpoint, direction or reply known', () => {
    const arrived = decode({ type: 'trace', endpointId: 0, srcIdentity: 5000, dstIdentity: 0, observationPoint: 9, ctState: 0, packet: icmp(8, 0) });
    expect(arrived).to.deep.include({ verdict: 'FORWARDED', trace_observation_point: 'FROM_OVERLAY', trace_reason: 'TRACE_REASON_UNKNOWN', event_type: { type: 4, sub_type: 9 }, traffic_direction: 'TRAFFIC_DIRECTION_UNKNOWN' });
    expect(arrived.source.identity).to.equal(5000);
    expect(arrived.destination).to.deep.equal(endpoint(SERVER_EP, 4242, 'server'));
    expect(arrived.is_reply).to.equal(undefined);
    expect(arrived.interface).to.equal(undefined);
    const left = decode({ type: 'trace', endpointId: 0, srcIdentity: 4242, dstIdentity: 0, observationPoint: 4, ctState: 0, packet: tcp(0x12, SERVER, CLIENT, 8080, 40000) });
    expect(left).to.deep.include({ trace_observation_point: 'TO_OVERLAY', event_type: { type: 4, sub_type: 4 }, traffic_direction: 'TRAFFIC_DIRECTION_UNKNOWN' });
    expect(left.source).to.deep.equal(endpoint(SERVER_EP, 4242, 'server'));
  });

  it('UDP, SCTP and other protocols; a packet without captured ports', () => {
    const udp = decode({ type: 'trace', ...base, observationPoint: 0, ctState: 1, packet: { ...tcp(0), protocol: 17, srcPort: 5353, dstPort: 53 } });
    expect(udp).to.deep.include({ l4: { UDP: { source_port: 5353, destination_port: 53 } }, Summary: 'UDP' });
    const sctp = decode({ type: 'trace', ...base, observationPoint: 0, ctState: 1, packet: { ...tcp(0), protocol: 132 } });
    expect(sctp.l4).to.deep.equal({ SCTP: { source_port: 40000, destination_port: 8080 } });
    const gre = decode({ type: 'drop', ...base, reason: 142, direction: 'egress', cookie: 0, packet: { ...tcp(0), protocol: 47 } });
    expect(gre).to.deep.include({ drop_reason_desc: 'UNKNOWN_L4_PROTOCOL', Summary: 'IPv4' });
    expect(gre.l4).to.equal(undefined);
  });

  it('names: every TCP flag, ICMP types and codes, observation points, drop reasons', () => {
    expect(tcpFlags(0xff)).to.deep.equal({ FIN: true, SYN: true, RST: true, PSH: true, ACK: true, URG: true, ECE: true, CWR: true });
    expect(tcpFlags(0x11)).to.deep.equal({ FIN: true, ACK: true });
    expect(icmpSummary(0, 0)).to.equal('EchoReply');
    expect(icmpSummary(11, 0)).to.equal('TimeExceeded(TTLExceeded)');
    expect(icmpSummary(3, 200)).to.equal('DestinationUnreachable(Code: 200)');
    expect(icmpSummary(99, 1)).to.equal('99(1)');
    expect([0, 1, 4, 5, 11, 13].map(observationPoint)).to.deep.equal(['TO_ENDPOINT', 'TO_PROXY', 'TO_OVERLAY', 'FROM_ENDPOINT', 'TO_NETWORK', 'TO_CRYPTO']);
    expect([132, 133, 151, 175, 181, 189, 203].map(dropReasonDesc)).to.deep.equal([
      'INVALID_SOURCE_IP',
      'POLICY_DENIED',
      'STALE_OR_UNROUTABLE_IP',
      'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND',
      'POLICY_DENY',
      'AUTH_REQUIRED',
      'DROP_EP_NOT_READY',
    ]);
    expect(dropReasonDesc(206), 'a code flow.DropReason does not name stays a number').to.equal(206);
  });

  it('from the datapath`s raw records: captured IPv4/TCP and ICMP headers end up in the flow', () => {
    // 10.0.1.5:40000 -> 10.0.0.2:8080 SYN|ECE|CWR, and an ICMP echo request (type 8) between the same.
    const tcpSyn = Buffer.from('450000280000400040060000' + '0a0001050a000002' + '9c401f9000000000000000005' + '0c2ffff00000000', 'hex');
    const echo = Buffer.from('450000540000400040010000' + '0a0001050a000002' + '0800f7ff00010001', 'hex');
    const record = (type: number, subtype: number, dir: number, at24: number, cookie: number, packet: Buffer): Buffer => {
      const b = Buffer.alloc(96);
      b.writeUInt8(type, 0);
      b.writeUInt8(subtype, 1);
      b.writeUInt16LE(SERVER_EP, 2);
      b.writeUInt16LE(packet.length, 8);
      b.writeUInt8(1, 10);
      b.writeUInt8(dir, 11);
      b.writeUInt32LE(5000, 16);
      b.writeUInt32LE(4242, 20);
      b.writeUInt16LE(at24, 24);
      b.writeUInt32LE(cookie, 28);
      packet.copy(b, 32);
      return b;
    };
    const drop = decode(decodeEvent(record(1, 181, 1, 0, 77, echo)));
    expect(drop).to.deep.include({ verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENY', l4: { ICMPv4: { type: 8, code: 0 } }, ingress_denied_by: [DENY_ICMP], event_type: { type: 1, sub_type: 181 } });
    const trace = decode(decodeEvent(record(4, 0, 1, 1, 0, tcpSyn)));
    expect(trace).to.deep.include({ verdict: 'FORWARDED', trace_observation_point: 'TO_ENDPOINT', trace_reason: 'NEW', Summary: 'TCP Flags: SYN, ECE, CWR' });
    expect(trace.l4).to.deep.equal({ TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true, ECE: true, CWR: true } } });
    expect(trace.IP).to.deep.equal({ source: CLIENT, destination: SERVER, ipVersion: 'IPv4' });
    const verdict = decode(decodeEvent(record(5, 0, 2, 0, 88, tcpSyn)));
    expect(verdict).to.deep.include({ verdict: 'FORWARDED', traffic_direction: 'EGRESS', egress_allowed_by: [ALLOW_WEB] });
  });
});
