// The suite's judgment of drop events, without a cluster: an expected drop is recognized only on
// the right node, in the right direction, with the right reason, endpoint and identities.
import { expect } from 'chai';
import { egressDrop, ingressDrop, isExpectedDrop, isOfConnection, localityOf, POLICY_DENY, type Action } from './actions.js';
import { dropCountDelta, type SeenDrop } from './drops.js';
import type { Peer } from './workloads.js';

const peer = (name: string, ip: string, node: string, identity: number, endpointId: number): Peer => ({
  name,
  namespace: 'ns',
  labels: { name },
  pod: `${name}-0`,
  ip,
  node,
  identity,
  endpointId,
});
const client = peer('client', '10.0.1.5', 'node-1', 1000, 11);
const echo = peer('echo-other-node', '10.0.2.7', 'node-2', 2000, 22);
const action: Action = { from: client, to: { name: 'echo', ip: echo.ip, node: echo.node, identity: echo.identity, peer: echo }, probe: { kind: 'http', ip: echo.ip, port: 8080 } };

function drop(over: { node?: string; reason?: number; direction?: 'ingress' | 'egress'; endpointId?: number; src?: number; dst?: number; dport?: number; reply?: boolean } = {}): SeenDrop {
  const [srcIp, dstIp, srcPort, dstPort] = over.reply ? [echo.ip, client.ip, 8080, 40000] : [client.ip, echo.ip, 40000, over.dport ?? 8080];
  return {
    node: over.node ?? 'node-2',
    at: 0,
    event: {
      type: 'drop',
      reason: over.reason ?? 133,
      direction: over.direction ?? 'ingress',
      cookie: 0,
      endpointId: over.endpointId ?? 22,
      srcIdentity: over.src ?? 1000,
      dstIdentity: over.dst ?? 2000,
      packet: { srcIp, dstIp, protocol: 6, srcPort, dstPort, flags: 2 },
    },
  };
}

describe('connectivity suite: judging drop events', () => {
  it('accepts the ingress drop the destination node reports with both identities', () => {
    expect(isExpectedDrop(action, ingressDrop(), drop())).to.equal(true);
    expect(localityOf(action)).to.equal('cross-node');
  });

  for (const [what, d] of [
    ['on the source node', drop({ node: 'node-1' })],
    ['in the other direction', drop({ direction: 'egress' })],
    ['for another reason', drop({ reason: POLICY_DENY })],
    ['by another endpoint', drop({ endpointId: 23 })],
    ['with the source identity lost (e.g. taken from the address, not the tunnel)', drop({ src: 6 })],
    ['with another destination identity', drop({ dst: 2 })],
    ['of another port', drop({ dport: 9090 })],
  ] as const) {
    it(`refuses a drop ${what}`, () => {
      expect(isExpectedDrop(action, ingressDrop(), d)).to.equal(false);
    });
  }

  it('holds an egress drop to the source node and endpoint', () => {
    expect(isExpectedDrop(action, egressDrop(), drop({ node: 'node-1', direction: 'egress', endpointId: 11 }))).to.equal(true);
    expect(isExpectedDrop(action, egressDrop(), drop({ direction: 'egress' }))).to.equal(false);
  });

  it('tells a ping\'s request from the reply of a ping the other way', () => {
    const ping: Action = { ...action, probe: { kind: 'ping', ip: echo.ip } };
    const icmp = (type: number, reply: boolean): SeenDrop => {
      const d = drop({ reply });
      return { ...d, event: { ...d.event, packet: { ...d.event.packet, protocol: 1, srcPort: 0, dstPort: 0, flags: type << 8 } } };
    };
    expect(isOfConnection(ping, icmp(8, false)), 'its request').to.equal(true);
    expect(isOfConnection(ping, icmp(0, true)), 'its reply').to.equal(true);
    expect(isOfConnection(ping, icmp(8, true)), 'the peer\'s own ping').to.equal(false);
  });

  it('counts a dropped reply as the connection\'s, and another port\'s drop as not', () => {
    expect(isOfConnection(action, drop({ reply: true }))).to.equal(true);
    expect(isOfConnection(action, drop({ dport: 9090 }))).to.equal(false);
  });

  it('reports only the drop counters that grew', () => {
    const before = new Map([['node-1', new Map([[133, 5], [139, 2]])]]);
    const after = new Map([['node-1', new Map([[133, 9], [139, 2], [151, 1]])], ['node-2', new Map([[181, 3]])]]);
    expect(dropCountDelta(before, after)).to.deep.equal([
      { node: 'node-1', reason: 133, count: 4 },
      { node: 'node-1', reason: 151, count: 1 },
      { node: 'node-2', reason: 181, count: 3 },
    ]);
  });
});
