// Three pods as network namespaces routed through the host, the real programs on their veths:
// real TCP connects and pings are allowed or dropped as the policy maps say, and every drop comes
// back as an event with the right identities and reason.
import { expect } from 'chai';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import type { Datapath, DropEvent, PolicyEntry } from '../../datapath/types.js';
import { IPPROTO_ICMP, IPPROTO_TCP } from '../../datapath/maps/protocols.js';
import { makePinDir, removePinDir } from '../../datapath/linux/testing/fixtures.js';
import { PodAgent } from './pod-agent.js';
import { EventLog } from './event-log.js';
import { ChildSet } from './children.js';
import { runCleanup } from './cleanup-steps.js';
import { DROP_INVALID_SIP, DROP_POLICY, DROP_POLICY_DENY, DROP_UNROUTABLE, endpointFor, isDrop, openDatapath, ping } from './harness.js';
import { TCP_SYN } from '../../datapath/linux/testing/packets.js';
import { enforcingWhereEntries } from '../../datapath/linux/testing/policy.js';

const PREFIX = 'ctns';
const PODS = ['client', 'server', 'other'] as const;
const EP = { client: 101, server: 102, other: 103 } as const;
const ID = { client: 10001, server: 10002, other: 10003 } as const;
const ICMP_ECHO_REQUEST = 8;

type PodName = keyof typeof EP;

// An allowed handshake gets time to spare on a loaded machine; a denied one is given up sooner
// (every denied attempt is also checked against its drop event, so a slow allowed one cannot pass
// as denied).
const ALLOWED_WAIT_MS = 5000;
const DENIED_WAIT_MS = 1500;

function allow(identity: number, direction: 'ingress' | 'egress', protocol: number, port: number, endPort?: number): PolicyEntry {
  return { identity, direction, protocol, port, ...(endPort === undefined ? {} : { endPort }), deny: false };
}

describe('datapath in network namespaces (three pods)', function () {
  this.timeout(60_000);
  let net: PodNetwork | undefined;
  let pinDir: string | undefined;
  let dp: Datapath | undefined;
  let events: EventLog | undefined;
  const agents = new Map<PodName, PodAgent>();
  const children = new ChildSet();

  const agent = (pod: PodName): PodAgent => agents.get(pod)!;
  const ip = (pod: PodName): string => net!.pod(pod).ip;
  const connects = (from: PodName, to: PodName, port: number): Promise<boolean> => agent(from).canConnect(ip(to), port, ALLOWED_WAIT_MS);
  const blocked = async (from: PodName, to: PodName, port: number): Promise<boolean> => !(await agent(from).canConnect(ip(to), port, DENIED_WAIT_MS));

  async function expectDrop(what: string, from: PodName, to: PodName, fields: Partial<DropEvent> & { dstPort?: number; protocol?: number }): Promise<DropEvent> {
    const { dstPort, protocol, ...rest } = fields;
    const ev = await events!.waitFor(
      what,
      (e): e is DropEvent =>
        isDrop(e) &&
        e.packet.srcIp === ip(from) &&
        e.packet.dstIp === ip(to) &&
        (dstPort === undefined || e.packet.dstPort === dstPort) &&
        (protocol === undefined || e.packet.protocol === protocol),
    );
    expect(ev, what).to.deep.include({ srcIdentity: ID[from], dstIdentity: ID[to], ...rest });
    return ev;
  }

  before(async () => {
    await PodNetwork.sweep(PREFIX);
    net = await PodNetwork.create({ prefix: PREFIX, pods: PODS });
    pinDir = makePinDir();
    dp = await openDatapath(pinDir);
    events = new EventLog(dp);
    // A new endpoint drops everything until its first policy sync; [] is "no policy": allow all.
    for (const pod of PODS) {
      await dp.upsertEndpoint(endpointFor(net.pod(pod), EP[pod], ID[pod]));
      await dp.syncPolicy(EP[pod], ...enforcingWhereEntries([]));
    }
    await dp.syncIPCache('endpoint', PODS.map((p) => ({ prefix: `${ip(p)}/32`, identity: ID[p] })));
    for (const pod of PODS) agents.set(pod, await PodAgent.start(net, pod, children));
    await agent('server').listen(8080);
    await agent('server').listen(9090);
    await agent('other').listen(8080);
    await agent('client').listen(7070);
  });

  after(() =>
    runCleanup('namespace test teardown', [
      ['stop pod agents', () => Promise.all([...agents.values()].map((a) => a.stop()))],
      ['kill helper processes', () => children.killAll()],
      ['stop event log', () => events?.stop()],
      ['close datapath', () => dp?.close()],
      ['destroy pod network', () => net?.destroy()],
      ['remove pin dir', () => removePinDir(pinDir)],
    ]),
  );

  beforeEach(() => events?.clear());

  it('without policy every pod reaches every other pod over TCP and ICMP', async () => {
    expect(await connects('client', 'server', 8080)).to.equal(true);
    expect(await connects('other', 'server', 9090)).to.equal(true);
    expect(await connects('server', 'other', 8080)).to.equal(true);
    expect(await ping(net!, 'client', ip('server'))).to.equal(true);
    expect(await ping(net!, 'other', ip('client'))).to.equal(true);
  });

  it('ingress policy on the server admits the allowed identity and port, drops the rest with reason 133', async () => {
    await dp!.syncPolicy(EP.server, ...enforcingWhereEntries([allow(ID.client, 'ingress', IPPROTO_TCP, 8080)]));
    expect(await connects('client', 'server', 8080)).to.equal(true);

    expect(await blocked('other', 'server', 8080)).to.equal(true);
    await expectDrop('drop of other -> server:8080', 'other', 'server', { dstPort: 8080, reason: DROP_POLICY, endpointId: EP.server, direction: 'ingress' });

    expect(await blocked('client', 'server', 9090)).to.equal(true);
    await expectDrop('drop of client -> server:9090', 'client', 'server', { dstPort: 9090, reason: DROP_POLICY, endpointId: EP.server, direction: 'ingress' });

    expect(await ping(net!, 'client', ip('server'))).to.equal(false);
    const icmp = await expectDrop('drop of client ping', 'client', 'server', { protocol: IPPROTO_ICMP, reason: DROP_POLICY, direction: 'ingress' });
    expect(icmp.packet.flags >> 8, 'ICMP type in the drop event').to.equal(ICMP_ECHO_REQUEST);
  });

  it('an ICMP type entry lets echo requests in and their replies back out, only for that identity', async () => {
    await dp!.syncPolicy(EP.server, ...enforcingWhereEntries([allow(ID.client, 'ingress', IPPROTO_TCP, 8080), allow(ID.client, 'ingress', IPPROTO_ICMP, ICMP_ECHO_REQUEST)]));
    expect(await ping(net!, 'client', ip('server'))).to.equal(true);
    expect(await ping(net!, 'other', ip('server'))).to.equal(false);
    await expectDrop('drop of other ping', 'other', 'server', { protocol: IPPROTO_ICMP, reason: DROP_POLICY });
  });

  it('a port range entry admits every port inside it and nothing outside', async () => {
    await dp!.syncPolicy(EP.server, ...enforcingWhereEntries([allow(ID.client, 'ingress', IPPROTO_TCP, 9000, 9100)]));
    expect(await connects('client', 'server', 9090)).to.equal(true);
    expect(await blocked('client', 'server', 8080)).to.equal(true);
    await expectDrop('drop of client -> server:8080 outside the range', 'client', 'server', { dstPort: 8080, reason: DROP_POLICY });
  });

  it('a deny entry wins over an allow-all and drops with reason 181', async () => {
    await dp!.syncPolicy(EP.server, ...enforcingWhereEntries([allow(0, 'ingress', 0, 0), { identity: ID.other, direction: 'ingress', protocol: 0, port: 0, deny: true }]));
    expect(await connects('client', 'server', 9090)).to.equal(true);
    expect(await blocked('other', 'server', 8080)).to.equal(true);
    await expectDrop('deny-list drop of other -> server', 'other', 'server', { dstPort: 8080, reason: DROP_POLICY_DENY, endpointId: EP.server });
  });

  it('egress policy on the client limits where it may connect, dropping at the client with reason 133', async () => {
    await dp!.syncPolicy(EP.server, ...enforcingWhereEntries([]));
    try {
      await dp!.syncPolicy(EP.client, ...enforcingWhereEntries([allow(ID.server, 'egress', IPPROTO_TCP, 8080)]));
      expect(await connects('client', 'server', 8080)).to.equal(true);
      expect(await blocked('client', 'other', 8080)).to.equal(true);
      await expectDrop('egress drop of client -> other', 'client', 'other', { dstPort: 8080, reason: DROP_POLICY, endpointId: EP.client, direction: 'egress' });
      expect(await connects('other', 'client', 7070), 'the client ingress does not enforce, and its replies pass egress').to.equal(true);
    } finally {
      await dp!.syncPolicy(EP.client, ...enforcingWhereEntries([]));
    }
  });

  it('a new deny cuts the peer\'s established connection too, with its drop event', async () => {
    const allowClient = [allow(ID.client, 'ingress', IPPROTO_TCP, 8080)];
    const serverOnly = { ingress: true, egress: false };
    await dp!.syncPolicy(EP.server, allowClient, serverOnly);
    expect(await dp!.syncPolicy(EP.server, allowClient, serverOnly), 'an identical sync writes nothing').to.deep.equal({ added: 0, updated: 0, removed: 0 });
    await agent('client').open('cut', ip('server'), 8080);
    try {
      expect(await agent('client').echo('cut', 64 * 1024)).to.include({ received: 64 * 1024, mismatches: 0 });

      await dp!.syncPolicy(EP.server, [allow(0, 'ingress', 0, 0), { identity: ID.client, direction: 'ingress', protocol: 0, port: 0, deny: true }], serverOnly);
      const echoed = await agent('client').echo('cut', 64 * 1024, DENIED_WAIT_MS).then(
        () => 'echoed',
        (err: Error) => err.message,
      );
      expect(echoed, 'the established connection no longer echoes').to.match(/bytes echoed after 1500 ms/);
      const drop = await expectDrop('drop of the established connection\'s data', 'client', 'server', { dstPort: 8080, reason: DROP_POLICY_DENY, endpointId: EP.server, direction: 'ingress' });
      expect(drop.packet.flags & TCP_SYN, 'a packet of the established connection, not a new SYN').to.equal(0);
      expect(await blocked('client', 'server', 8080)).to.equal(true);
    } finally {
      await agent('client').close('cut');
    }
  });

  it('a removed endpoint\'s pod can neither send nor receive while its veth lives', async () => {
    expect(await connects('other', 'server', 9090)).to.equal(true);
    await dp!.syncPolicy(EP.server, [], { ingress: false, egress: false });
    await dp!.removeEndpoint(EP.other);
    try {
      expect(await blocked('other', 'server', 9090), 'other sends').to.equal(true);
      await expectDrop('drop of what the removed pod sends', 'other', 'server', { dstPort: 9090, reason: DROP_INVALID_SIP, endpointId: 0, srcIdentity: 0, dstIdentity: 0 });
      expect(await blocked('server', 'other', 8080), 'other receives').to.equal(true);
      await expectDrop('drop of what is delivered to the removed pod', 'server', 'other', { dstPort: 8080, reason: DROP_UNROUTABLE, endpointId: 0, srcIdentity: 0, dstIdentity: 0 });
    } finally {
      await dp!.upsertEndpoint(endpointFor(net!.pod('other'), EP.other, ID.other));
      await dp!.syncPolicy(EP.other, [], { ingress: false, egress: false });
    }
    expect(await connects('other', 'server', 9090), 'back once the endpoint is back').to.equal(true);
  });
});
