// Verdicts of the endpoint programs on the real kernel, through program test runs on crafted
// frames: policy by identity, port, range, protocol and ICMP type, precedence, conntrack, and
// the counters and event records each verdict leaves behind.
import { expect } from 'chai';
import path from 'node:path';
import { BpfMap } from '../libbpf/map.js';
import { CT_ENTRY_LAYOUT } from '../maps/ct.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../maps/protocols.js';
import { newLogger } from '../../controllers/runtime/log.js';
import type { DatapathEvent, DropEvent, PolicyEntry, PolicyVerdictEvent, TraceEvent } from '../types.js';
import { LinuxDatapath, type EndpointProgram } from './linux-datapath.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, type TestLink } from './testing/fixtures.js';
import { arpPacket, icmpPacket, ipv4Fragment, ipv6Packet, tcpPacket, TCP_ACK, TCP_FIN, TCP_SYN, udpPacket } from './testing/packets.js';
import { enforcingWhereEntries } from './testing/policy.js';

const PASS = 0; // TC_ACT_OK
const DROP = 2; // TC_ACT_SHOT
const TCP = IPPROTO_TCP;
const UDP = IPPROTO_UDP;
const ICMP = IPPROTO_ICMP;

const A = { id: 101, ipv4: '10.200.0.1', identity: 50001 };
const B = { id: 102, ipv4: '10.200.0.2', identity: 50002 };
// Remote peers known to the ipcache; anything else is world (2).
const WEB = { prefix: '10.201.0.0/16', ip: '10.201.3.4', identity: 60001 };
const DB = { prefix: '10.202.0.5/32', ip: '10.202.0.5', identity: 60002 };
const WORLD_IP = '192.0.2.9';
const WORLD = 2;

let sport = 20000;
const nextPort = (): number => sport++;

describe('endpoint program verdicts (BPF_PROG_TEST_RUN)', function () {
  let linkA: TestLink | undefined;
  let linkB: TestLink | undefined;
  let pinDir: string | undefined;
  let dp: LinuxDatapath;

  before(async function () {
    linkA = await createTestLink('va');
    linkB = await createTestLink('vb');
  });
  after(async function () {
    await removeTestLink(linkA);
    await removeTestLink(linkB);
  });

  beforeEach(async function () {
    pinDir = makePinDir();
    dp = await LinuxDatapath.open({ bpffsDir: pinDir, logger: newLogger('datapath-test', 'warn') });
    const nodeMac = '02:00:00:00:00:ff';
    await dp.upsertEndpoint({ ...A, ifname: linkA!.ifname, ifindex: linkA!.ifindex, mac: '02:00:00:00:00:01', nodeMac });
    await dp.upsertEndpoint({ ...B, ifname: linkB!.ifname, ifindex: linkB!.ifindex, mac: '02:00:00:00:00:02', nodeMac });
    await dp.syncIPCache('endpoint', [
      { prefix: WEB.prefix, identity: WEB.identity },
      { prefix: DB.prefix, identity: DB.identity },
    ]);
  });
  afterEach(async function () {
    try {
      await dp?.pruneEndpoints([]);
    } finally {
      try {
        await dp?.close();
      } finally {
        removePinDir(pinDir);
      }
    }
  });

  /** Runs a program as if on the veth of the endpoint the packet belongs to, or on `ifindex`. */
  function run(program: EndpointProgram, packet: Buffer, ifindex?: number): number {
    return dp.testRun(program, packet, 1, ifindex).retval;
  }
  /** A new TCP connection from A (egress of A). */
  function synFromA(dst: string, dport: number): number {
    return run('from-container', tcpPacket({ src: A.ipv4, dst, sport: nextPort(), dport, flags: TCP_SYN }));
  }
  /** A new TCP connection to A (ingress of A). */
  function synToA(src: string, dport: number): number {
    return run('to-container', tcpPacket({ src, dst: A.ipv4, sport: nextPort(), dport, flags: TCP_SYN }));
  }
  async function policyA(entries: PolicyEntry[]): Promise<void> {
    await dp.syncPolicy(A.id, ...enforcingWhereEntries(entries));
  }
  const egress = (identity: number, protocol: number, port = 0, endPort?: number, deny = false): PolicyEntry =>
    ({ identity, direction: 'egress', protocol, port, endPort, deny });
  const ingress = (identity: number, protocol: number, port = 0, endPort?: number, deny = false): PolicyEntry =>
    ({ identity, direction: 'ingress', protocol, port, endPort, deny });
  function verdicts(): PolicyVerdictEvent[] {
    return dp.drainEvents().filter((e): e is PolicyVerdictEvent => e.type === 'policy-verdict');
  }
  /** Handshake of a TCP flow A -> WEB:80; returns the ACKs of its two directions. */
  function establish(): { out: Buffer; back: Buffer } {
    const port = nextPort();
    const out = { src: A.ipv4, dst: WEB.ip, sport: port, dport: 80 };
    const back = { src: WEB.ip, dst: A.ipv4, sport: 80, dport: port };
    expect(run('from-container', tcpPacket({ ...out, flags: TCP_SYN }))).to.equal(PASS);
    expect(run('to-container', tcpPacket({ ...back, flags: TCP_SYN | TCP_ACK }))).to.equal(PASS);
    expect(run('from-container', tcpPacket({ ...out, flags: TCP_ACK }))).to.equal(PASS);
    return { out: tcpPacket({ ...out, flags: TCP_ACK }), back: tcpPacket({ ...back, flags: TCP_ACK }) };
  }

  describe('before the first policy sync', function () {
    it('drops every packet of the endpoint with 203, in both directions', function () {
      expect(synFromA(WORLD_IP, 22)).to.equal(DROP);
      expect(synToA(DB.ip, 80)).to.equal(DROP);
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drops.map((d) => [d.reason, d.endpointId, d.direction])).to.deep.equal([
        [203, A.id, 'egress'],
        [203, A.id, 'ingress'],
      ]);
    });
  });

  describe('without policy', function () {
    beforeEach(async function () {
      await policyA([]);
    });

    it('allows everything in both directions', function () {
      expect(synFromA(WORLD_IP, 22)).to.equal(PASS);
      expect(synFromA(DB.ip, 5432)).to.equal(PASS);
      expect(run('from-container', udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 }))).to.equal(PASS);
      expect(synToA(WORLD_IP, 8080)).to.equal(PASS);
      expect(run('to-container', icmpPacket({ src: DB.ip, dst: A.ipv4, type: 8, id: 7 }))).to.equal(PASS);
    });

    it('reports the allow-all entry as an "all" match', function () {
      synFromA(WEB.ip, 80);
      const [v] = verdicts();
      expect(v).to.include({ verdict: 0, matchType: 4, direction: 'egress', endpointId: A.id, srcIdentity: A.identity, dstIdentity: WEB.identity });
    });
  });

  describe('with policy', function () {
    it('drops what nothing allows (133) and only in the enforcing direction', async function () {
      await policyA([egress(WEB.identity, TCP, 80)]);
      expect(synFromA(WEB.ip, 80)).to.equal(PASS);
      expect(synFromA(WEB.ip, 81)).to.equal(DROP);
      expect(synFromA(DB.ip, 80)).to.equal(DROP);
      expect(synFromA(WORLD_IP, 80)).to.equal(DROP);
      expect(synToA(DB.ip, 9999)).to.equal(PASS);
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drops.map((d) => d.reason)).to.deep.equal([133, 133, 133]);
      expect(drops.map((d) => d.dstIdentity)).to.deep.equal([WEB.identity, DB.identity, WORLD]);
    });

    it('allows by identity, including local endpoints found in cilium_lxc', async function () {
      await policyA([egress(B.identity, TCP, 0), ingress(DB.identity, TCP, 0)]);
      expect(synFromA(B.ipv4, 443)).to.equal(PASS);
      expect(synFromA(WEB.ip, 443)).to.equal(DROP);
      expect(synToA(DB.ip, 443)).to.equal(PASS);
      expect(synToA(WEB.ip, 443)).to.equal(DROP);
      expect(synToA(B.ipv4, 443)).to.equal(DROP);
    });

    it('matches port ranges exactly at their bounds', async function () {
      await policyA([egress(WEB.identity, TCP, 8000, 8099)]);
      for (const port of [8000, 8001, 8063, 8064, 8098, 8099]) expect(synFromA(WEB.ip, port), `port ${port}`).to.equal(PASS);
      for (const port of [7999, 8100, 8191, 80]) expect(synFromA(WEB.ip, port), `port ${port}`).to.equal(DROP);
    });

    it('allows a whole protocol and nothing else', async function () {
      await policyA([egress(WEB.identity, UDP)]);
      expect(run('from-container', udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 }))).to.equal(PASS);
      expect(run('from-container', udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 65535 }))).to.equal(PASS);
      expect(synFromA(WEB.ip, 53)).to.equal(DROP);
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 8, id: 1 }))).to.equal(DROP);
    });

    it('expands a port range with any protocol to TCP, UDP and SCTP only', async function () {
      await policyA([egress(WEB.identity, 0, 0, 100)]);
      expect(synFromA(WEB.ip, 80)).to.equal(PASS);
      expect(run('from-container', udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 0 }))).to.equal(PASS);
      expect(synFromA(WEB.ip, 101)).to.equal(DROP);
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 8, id: 3 }))).to.equal(DROP);
    });

    it('does not let one allowed ICMP type make another look established', async function () {
      await policyA([egress(WEB.identity, ICMP, 13)]);
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 13 }))).to.equal(PASS);
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 13 }))).to.equal(PASS);
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 15 }))).to.equal(DROP);
    });

    it('allows ICMP by type', async function () {
      await policyA([ingress(0, ICMP, 8)]);
      expect(run('to-container', icmpPacket({ src: DB.ip, dst: A.ipv4, type: 8, id: 9 }))).to.equal(PASS);
      expect(run('to-container', icmpPacket({ src: DB.ip, dst: A.ipv4, type: 13 }))).to.equal(DROP);
      expect(synToA(DB.ip, 8)).to.equal(DROP);
    });

    it('ranks the most specific match first (identity over wildcard on a tie)', async function () {
      await policyA([egress(WEB.identity, 0), egress(0, TCP, 80), egress(DB.identity, TCP, 443), egress(0, TCP, 443), egress(0, UDP)]);
      synFromA(WEB.ip, 80); // WEB/*/* vs ANY/TCP/80: the port match is longer
      run('from-container', udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 })); // WEB/*/* vs ANY/UDP/*
      synFromA(WEB.ip, 22); // only WEB/*/*
      synFromA(DB.ip, 443); // DB/TCP/443 ties ANY/TCP/443
      synFromA(WORLD_IP, 80); // only ANY/TCP/80
      run('from-container', udpPacket({ src: A.ipv4, dst: WORLD_IP, sport: nextPort(), dport: 53 })); // only ANY/UDP/*
      expect(verdicts().map((v) => [v.verdict, v.matchType])).to.deep.equal([
        [0, 3], // L4-only
        [0, 6], // proto-only
        [0, 1], // L3-only
        [0, 2], // L3-L4
        [0, 3],
        [0, 6],
      ]);
    });

    it('lets a deny win over any allow (181)', async function () {
      await policyA([
        egress(0, 0), // allow everything...
        egress(DB.identity, TCP, 443, undefined, true), // ...but DB:443
        egress(WEB.identity, 0, 0, undefined, true), // ...and anything to WEB,
        egress(WEB.identity, TCP, 80), // even where a narrower allow exists
        egress(0, UDP, 53, undefined, true), // ...and DNS to anyone,
        egress(B.identity, UDP, 53), // even with an identity-specific allow
      ]);
      expect(synFromA(DB.ip, 443)).to.equal(DROP);
      expect(synFromA(DB.ip, 80)).to.equal(PASS);
      expect(synFromA(WEB.ip, 80)).to.equal(DROP);
      expect(synFromA(WEB.ip, 22)).to.equal(DROP);
      expect(run('from-container', udpPacket({ src: A.ipv4, dst: B.ipv4, sport: nextPort(), dport: 53 }))).to.equal(DROP);
      expect(run('from-container', udpPacket({ src: A.ipv4, dst: B.ipv4, sport: nextPort(), dport: 54 }))).to.equal(PASS);
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drops.map((d) => d.reason)).to.deep.equal([181, 181, 181, 181]);
    });

    it('makes deny-only policy default-deny unless enforcement says otherwise', async function () {
      await policyA([egress(DB.identity, TCP, 443, undefined, true)]);
      expect(synFromA(WEB.ip, 80)).to.equal(DROP);
      await dp.syncPolicy(A.id, [egress(DB.identity, TCP, 443, undefined, true)], { ingress: false, egress: false });
      expect(synFromA(WEB.ip, 80)).to.equal(PASS);
      expect(synFromA(DB.ip, 443)).to.equal(DROP);
    });
  });

  describe('connection tracking', function () {
    it('passes replies and established packets of an allowed flow with no new policy-verdict event', async function () {
      await policyA([egress(WEB.identity, TCP, 80), ingress(9999, TCP, 1)]);
      const { out, back } = establish();
      // The same packet that just came back as a reply is dropped when it opens a connection.
      expect(run('to-container', tcpPacket({ src: WEB.ip, dst: A.ipv4, sport: 80, dport: nextPort(), flags: TCP_SYN }))).to.equal(DROP);
      expect(verdicts()).to.have.length(2);

      // A policy change that still allows the flow: judged again once, silently, and passing.
      await policyA([egress(WEB.identity, TCP, 80), egress(WEB.identity, TCP, 81), ingress(9999, TCP, 1)]);
      expect(run('from-container', out)).to.equal(PASS);
      expect(run('to-container', back)).to.equal(PASS);
      expect(dp.drainEvents()).to.deep.equal([]);
    });

    it('gives entries upstream lifetimes: SYN 60 s, established TCP 8000 s, closing 10 s, non-TCP 60 s', async function () {
      await policyA([egress(WEB.identity, TCP, 80), egress(WEB.identity, UDP, 53)]);
      const port = nextPort();
      const out = { src: A.ipv4, dst: WEB.ip, sport: port, dport: 80 };
      const lifetimeLeft = (protocol: number): number => {
        const now = Number(process.hrtime.bigint() / 1_000_000_000n); // bpf_ktime_get_ns is CLOCK_MONOTONIC too
        const found = dp.conntrack().find((c) => c.tuple.protocol === protocol && c.tuple.saddr === A.ipv4 && c.tuple.hook === 'egress');
        expect(found, `conntrack entry for protocol ${protocol}`).to.not.equal(undefined);
        return found!.entry.lifetime - now;
      };
      run('from-container', tcpPacket({ ...out, flags: TCP_SYN }));
      expect(lifetimeLeft(TCP)).to.be.within(59, 60);
      run('from-container', tcpPacket({ ...out, flags: TCP_ACK }));
      expect(lifetimeLeft(TCP)).to.be.within(7999, 8000);
      run('from-container', tcpPacket({ ...out, flags: TCP_ACK | TCP_FIN }));
      expect(lifetimeLeft(TCP)).to.be.within(9, 10);
      run('from-container', udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 }));
      expect(lifetimeLeft(UDP)).to.be.within(59, 60);
    });

    it('treats an expired entry as a new flow that policy decides again', async function () {
      await policyA([egress(WEB.identity, TCP, 80)]);
      const out = { src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 80 };
      expect(run('from-container', tcpPacket({ ...out, flags: TCP_SYN }))).to.equal(PASS);
      expect(run('from-container', tcpPacket({ ...out, flags: TCP_ACK }))).to.equal(PASS);
      expect(verdicts(), 'one decision for the live flow').to.have.length(1);
      const ct = BpfMap.openPinned(path.join(pinDir!, 'cilium_ct4_global'));
      try {
        for (const [key, value] of ct.entries()) {
          value.writeUInt32LE(1, CT_ENTRY_LAYOUT.members.lifetime.offset); // expired long ago
          ct.update(key, value);
        }
      } finally {
        ct.close();
      }
      expect(run('from-container', tcpPacket({ ...out, flags: TCP_ACK }))).to.equal(PASS);
      expect(verdicts(), 'the expired flow decided again as new').to.have.length(1);
    });

    it('tracks flows between two local endpoints on both hooks', async function () {
      await dp.syncPolicy(B.id, ...enforcingWhereEntries([ingress(A.identity, TCP, 5432), egress(9999, TCP, 1)]));
      await policyA([egress(B.identity, TCP, 5432), ingress(9999, TCP, 1)]);
      const port = nextPort();
      const ab = tcpPacket({ src: A.ipv4, dst: B.ipv4, sport: port, dport: 5432, flags: TCP_SYN });
      const ba = tcpPacket({ src: B.ipv4, dst: A.ipv4, sport: 5432, dport: port, flags: TCP_SYN | TCP_ACK });
      expect(run('from-container', ab)).to.equal(PASS); // A's egress
      expect(run('to-container', ab)).to.equal(PASS); // B's ingress
      expect(run('from-container', ba)).to.equal(PASS); // B's egress: reply
      expect(run('to-container', ba)).to.equal(PASS); // A's ingress: reply
      const v = verdicts();
      expect(v.map((e) => [e.endpointId, e.direction])).to.deep.equal([
        [A.id, 'egress'],
        [B.id, 'ingress'],
      ]);
    });

    it('passes ICMP echo replies of an allowed ping', async function () {
      await policyA([egress(WEB.identity, ICMP, 8), ingress(9999, TCP, 1)]);
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 8, id: 77 }))).to.equal(PASS);
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 0, id: 77 }))).to.equal(PASS);
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 0, id: 78 }))).to.equal(DROP);
    });

    it('passes ICMP errors about a tracked flow as related, and drops others', async function () {
      await policyA([egress(WEB.identity, UDP, 53), ingress(9999, TCP, 1)]);
      const query = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 });
      const stranger = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 54 });
      expect(run('from-container', query)).to.equal(PASS);
      dp.drainEvents();
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 3, code: 3, quote: query }))).to.equal(PASS);
      expect(run('to-container', icmpPacket({ src: '10.201.9.9', dst: A.ipv4, type: 11, quote: query }))).to.equal(PASS);
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 3, code: 3, quote: stranger }))).to.equal(DROP);
      const traces = dp.drainEvents().filter((e): e is TraceEvent => e.type === 'trace');
      expect(traces.map((t) => [t.ctState, t.observationPoint])).to.deep.equal([
        [4, 0],
        [4, 0],
      ]);
    });

    it('judges an ICMP error by policy once its flow\'s cached verdict is out of date', async function () {
      await policyA([egress(WEB.identity, UDP, 53), ingress(9999, TCP, 1)]);
      const query = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 });
      const error = icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 3, code: 3, quote: query });
      expect(run('from-container', query)).to.equal(PASS);
      expect(run('to-container', error)).to.equal(PASS);
      await policyA([egress(WEB.identity, UDP, 54), ingress(9999, TCP, 1)]);
      dp.drainEvents();
      expect(run('to-container', error), 'an error about a flow policy now denies').to.equal(DROP);
      expect(dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop').map((d) => d.reason)).to.deep.equal([133]);
    });
    it('relates only ICMP errors about this endpoint\'s own flows, and only types 3, 11, 12', async function () {
      await policyA([egress(WEB.identity, UDP, 53), ingress(WEB.identity, UDP, 5000)]);
      await dp.syncPolicy(B.id, ...enforcingWhereEntries([egress(WEB.identity, UDP, 53), ingress(WEB.identity, UDP, 5000)]));
      const queryA = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 });
      const queryB = udpPacket({ src: B.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 });
      const toA = udpPacket({ src: WEB.ip, dst: A.ipv4, sport: nextPort(), dport: 5000 });
      const toB = udpPacket({ src: WEB.ip, dst: B.ipv4, sport: nextPort(), dport: 5000 });
      for (const [program, packet] of [['from-container', queryA], ['from-container', queryB], ['to-container', toA], ['to-container', toB]] as const) {
        expect(run(program, packet)).to.equal(PASS);
      }
      // Delivered to A: about A's query yes, about B's query no; a redirect is never related.
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 3, code: 3, quote: queryA }))).to.equal(PASS);
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 3, code: 3, quote: queryB }))).to.equal(DROP);
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 5, quote: queryA }))).to.equal(DROP);
      expect(run('to-container', icmpPacket({ src: WEB.ip, dst: A.ipv4, type: 12, quote: queryA }))).to.equal(PASS);
      // Sent by A: about what A received yes, about what B received no.
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 3, code: 3, quote: toA }))).to.equal(PASS);
      expect(run('from-container', icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 3, code: 3, quote: toB }))).to.equal(DROP);
    });
  });

  describe('what the programs record', function () {
    it('counts forwards and drops per reason and direction in cilium_metrics', async function () {
      await policyA([egress(WEB.identity, TCP, 80)]);
      for (let i = 0; i < 3; i++) synFromA(WEB.ip, 80);
      for (let i = 0; i < 2; i++) synFromA(DB.ip, 80);
      synToA(DB.ip, 80);
      const frameBytes = tcpPacket({ src: A.ipv4, dst: WEB.ip, sport: 1, dport: 80, flags: TCP_SYN }).length;
      const m = dp.metrics();
      expect(m).to.deep.include({ reason: 0, direction: 'egress', count: 3, bytes: 3 * frameBytes });
      expect(m).to.deep.include({ reason: 133, direction: 'egress', count: 2, bytes: 2 * frameBytes });
      expect(m).to.deep.include({ reason: 0, direction: 'ingress', count: 1, bytes: frameBytes });
    });

    it('emits policy-verdict, trace and drop records with identities and headers', async function () {
      await policyA([ingress(WEB.identity, TCP, 443)]);
      synToA(WEB.ip, 443);
      run('to-container', tcpPacket({ src: DB.ip, dst: A.ipv4, sport: 4444, dport: 443, flags: TCP_SYN }));
      const events: DatapathEvent[] = dp.drainEvents();
      expect(events.map((e) => e.type)).to.deep.equal(['policy-verdict', 'trace', 'policy-verdict', 'drop']);
      expect(events[0]).to.include({ endpointId: A.id, srcIdentity: WEB.identity, dstIdentity: A.identity, direction: 'ingress', verdict: 0, matchType: 2 });
      expect(events[1]).to.include({ endpointId: A.id, observationPoint: 0, ctState: 1 });
      expect(events[3]).to.deep.include({
        type: 'drop',
        endpointId: A.id,
        srcIdentity: DB.identity,
        dstIdentity: A.identity,
        reason: 133,
        direction: 'ingress',
        packet: { srcIp: DB.ip, dstIp: A.ipv4, protocol: TCP, srcPort: 4444, dstPort: 443, flags: TCP_SYN },
      });
    });

    it('judges a packet only on the veth of the endpoint that owns its address (132, 151)', async function () {
      await policyA([]);
      await dp.syncPolicy(B.id, ...enforcingWhereEntries([]));
      const fromA = tcpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 80, flags: TCP_SYN });
      const toA = tcpPacket({ src: WEB.ip, dst: A.ipv4, sport: nextPort(), dport: 80, flags: TCP_SYN });
      expect(run('from-container', fromA, linkA!.ifindex)).to.equal(PASS);
      expect(run('to-container', toA, linkA!.ifindex)).to.equal(PASS);
      // B sending with A's address, and A's traffic handed to B's veth.
      expect(run('from-container', fromA, linkB!.ifindex)).to.equal(DROP);
      expect(run('to-container', toA, linkB!.ifindex)).to.equal(DROP);
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drops.map((d) => [d.reason, d.direction])).to.deep.equal([
        [132, 'egress'],
        [151, 'ingress'],
      ]);
    });

    it('judges an established flow\'s packets on another veth by that veth, whatever the flow\'s entry caches (132, 151)', async function () {
      await policyA([]);
      await dp.syncPolicy(B.id, ...enforcingWhereEntries([]));
      const { out, back } = establish();
      dp.drainEvents();
      // A's live flow handed to B's veth: its entries hold the current revision, for A's veth.
      expect(run('from-container', out, linkB!.ifindex)).to.equal(DROP);
      expect(run('to-container', back, linkB!.ifindex)).to.equal(DROP);
      expect(run('from-container', out)).to.equal(PASS);
      expect(run('to-container', back)).to.equal(PASS);
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drops.map((d) => [d.reason, d.direction])).to.deep.equal([
        [132, 'egress'],
        [151, 'ingress'],
      ]);
    });

    it('drops spoofed sources (132) and IPv6 (139), passes ARP', function () {
      expect(run('from-container', tcpPacket({ src: '10.200.0.99', dst: WEB.ip, sport: 1, dport: 80, flags: TCP_SYN }))).to.equal(DROP);
      expect(run('from-container', ipv6Packet())).to.equal(DROP);
      expect(run('from-container', arpPacket())).to.equal(PASS);
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drops.map((d) => [d.reason, d.endpointId])).to.deep.equal([
        [132, 0],
        [139, 0],
      ]);
    });
  });

  describe('fail-open paths, closed', function () {
    /** A flow A -> WEB:80 established with its events drained. */
    function established(): { out: Buffer; back: Buffer } {
      const flow = establish();
      dp.drainEvents();
      return flow;
    }
    const flowPackets = (): number => dp.conntrack().filter((c) => c.tuple.saddr === A.ipv4 && c.tuple.daddr === WEB.ip).reduce((n, c) => n + c.entry.packets, 0);
    const dropsAndVerdicts = (): Array<[string, number, string, number]> =>
      dp.drainEvents().flatMap((e) => (e.type === 'drop' ? [[e.type, e.reason, e.direction, e.cookie] as [string, number, string, number]] : e.type === 'policy-verdict' ? [[e.type, e.verdict, e.direction, e.cookie] as [string, number, string, number]] : []));

    it('cuts an established flow whose allow is revoked, replies included, without refreshing it', async function () {
      await policyA([egress(WEB.identity, TCP, 80), ingress(9999, TCP, 1)]);
      const { out, back } = established();
      const packets = flowPackets();
      await policyA([egress(WEB.identity, TCP, 81), ingress(9999, TCP, 1)]);
      expect(run('from-container', out)).to.equal(DROP);
      expect(run('to-container', back), 'a reply of a flow its opening direction no longer allows').to.equal(DROP);
      expect(dropsAndVerdicts()).to.deep.equal([
        ['policy-verdict', 133, 'egress', 0],
        ['drop', 133, 'egress', 0],
        ['policy-verdict', 133, 'egress', 0],
        ['drop', 133, 'ingress', 0],
      ]);
      expect(flowPackets(), 'dropped packets neither count on nor keep alive the entry').to.equal(packets);
      // Allowed again: the flow resumes from its entry.
      await policyA([egress(WEB.identity, TCP, 80), ingress(9999, TCP, 1)]);
      expect(run('from-container', out)).to.equal(PASS);
      expect(run('to-container', back)).to.equal(PASS);
    });

    it('cuts an established flow with a new deny (181), naming the deny\'s rule cookie', async function () {
      await policyA([{ ...egress(WEB.identity, TCP, 80), cookie: 5 }]);
      const { out } = established();
      await policyA([{ ...egress(WEB.identity, TCP, 80), cookie: 5 }, { ...egress(WEB.identity, 0, 0, undefined, true), cookie: 77 }]);
      expect(run('from-container', out)).to.equal(DROP);
      expect(dropsAndVerdicts()).to.deep.equal([
        ['policy-verdict', 181, 'egress', 77],
        ['drop', 181, 'egress', 77],
      ]);
    });

    it('cuts live flows with 203 while a failed sync leaves the endpoint closed', async function () {
      await policyA([egress(WEB.identity, TCP, 80)]);
      const { out } = established();
      const bad = await dp.syncPolicy(A.id, [egress(WEB.identity, 256)], { ingress: false, egress: true }).then(() => undefined, (err: Error) => err);
      expect(bad?.message).to.match(/endpoint 101: policy cannot be computed/);
      expect(run('from-container', out)).to.equal(DROP);
      expect(dropsAndVerdicts()).to.deep.equal([['drop', 203, 'egress', 0]]);
      await policyA([egress(WEB.identity, TCP, 80)]);
      expect(run('from-container', out)).to.equal(PASS);
    });

    it('judges a live flow again when the ipcache gives its peer another identity', async function () {
      await policyA([egress(WEB.identity, TCP, 80)]);
      const { out } = established();
      await dp.syncIPCache('endpoint', [{ prefix: WEB.prefix, identity: 60099 }, { prefix: DB.prefix, identity: DB.identity }]);
      expect(run('from-container', out)).to.equal(DROP);
      const [drop] = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drop).to.include({ reason: 133, srcIdentity: A.identity, dstIdentity: 60099 });
    });

    it('drops what is delivered to an address no endpoint owns (151), broadcast included', async function () {
      await policyA([]);
      for (const dst of ['10.200.0.77', '10.200.0.255', '255.255.255.255']) {
        expect(run('to-container', udpPacket({ src: WEB.ip, dst, sport: nextPort(), dport: 67 }), linkA!.ifindex), dst).to.equal(DROP);
      }
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      expect(drops.map((d) => [d.reason, d.direction])).to.deep.equal([
        [151, 'ingress'],
        [151, 'ingress'],
        [151, 'ingress'],
      ]);
    });

    it('enforces a direction with no entries: a policy whose peers match nothing today drops everything', async function () {
      await dp.syncPolicy(A.id, [], { ingress: true, egress: false });
      expect(synToA(WEB.ip, 80)).to.equal(DROP);
      expect(synToA(WORLD_IP, 443)).to.equal(DROP);
      expect(synFromA(WEB.ip, 80)).to.equal(PASS);
      expect(dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop').map((d) => d.reason)).to.deep.equal([133, 133]);
    });

    it('judges later fragments by the ports of their datagram\'s first fragment', async function () {
      await policyA([egress(WEB.identity, UDP, 53)]);
      const allowed = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 });
      const denied = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 54 });
      expect(run('from-container', ipv4Fragment(allowed, { id: 100, offset: 0, more: true }))).to.equal(PASS);
      expect(run('from-container', ipv4Fragment(allowed, { id: 100, offset: 3, more: true }))).to.equal(PASS);
      expect(run('from-container', ipv4Fragment(allowed, { id: 100, offset: 6, more: false }))).to.equal(PASS);
      expect(run('from-container', ipv4Fragment(denied, { id: 101, offset: 0, more: true }))).to.equal(DROP);
      expect(run('from-container', ipv4Fragment(denied, { id: 101, offset: 3, more: false }))).to.equal(DROP);
      // A later fragment whose first fragment was never seen has no ports to be judged by.
      expect(run('from-container', ipv4Fragment(allowed, { id: 102, offset: 3, more: false }))).to.equal(DROP);
      const drops = dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop');
      // The denied first fragment left no ports behind: its later fragment is not found either.
      expect(drops.map((d) => d.reason)).to.deep.equal([133, 175, 175]);
    });

    it('judges ICMP fragments by their first fragment\'s type and never lets a later one open a flow', async function () {
      await policyA([egress(WEB.identity, ICMP, 0, 255), egress(WEB.identity, ICMP, 8, undefined, true)]);
      const echo = icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 8, id: 500 });
      expect(run('from-container', ipv4Fragment(echo, { id: 200, offset: 0, more: true }))).to.equal(DROP);
      expect(run('from-container', ipv4Fragment(echo, { id: 200, offset: 3, more: false }))).to.equal(DROP);
      expect(run('from-container', echo), 'an echo request the deny covers, unfragmented').to.equal(DROP);
      expect(dp.drainEvents().filter((e): e is DropEvent => e.type === 'drop').map((d) => d.reason)).to.deep.equal([181, 175, 181]);
      expect(dp.conntrack().filter((c) => c.tuple.protocol === ICMP), 'no flow opened by a fragment').to.deep.equal([]);
      // An allowed type passes whole, and its later fragments are judged as that type.
      const timestamp = icmpPacket({ src: A.ipv4, dst: WEB.ip, type: 13 });
      expect(run('from-container', ipv4Fragment(timestamp, { id: 201, offset: 0, more: true }))).to.equal(PASS);
      expect(run('from-container', ipv4Fragment(timestamp, { id: 201, offset: 3, more: false }))).to.equal(PASS);
    });

    it('records a first fragment only once it passed on its own endpoint\'s veth', async function () {
      await policyA([egress(WEB.identity, UDP, 53)]);
      await dp.syncPolicy(B.id, ...enforcingWhereEntries([egress(WEB.identity, UDP, 53)]));
      const frags = BpfMap.openPinned(path.join(pinDir!, 'cilium_ipv4_frag_datagrams'));
      try {
        const spoofed = udpPacket({ src: B.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 });
        expect(run('from-container', ipv4Fragment(spoofed, { id: 300, offset: 0, more: true }), linkA!.ifindex), 'B\'s address sent from A\'s veth').to.equal(DROP);
        const denied = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 54 });
        expect(run('from-container', ipv4Fragment(denied, { id: 301, offset: 0, more: true }))).to.equal(DROP);
        expect([...frags.keys()], 'neither a spoofed nor a denied first fragment is recorded').to.have.length(0);
        const allowed = udpPacket({ src: A.ipv4, dst: WEB.ip, sport: nextPort(), dport: 53 });
        expect(run('from-container', ipv4Fragment(allowed, { id: 302, offset: 0, more: true }))).to.equal(PASS);
        expect([...frags.keys()]).to.have.length(1);
      } finally {
        frags.close();
      }
    });

    it('passes the later fragments of a large UDP reply', async function () {
      await policyA([egress(WEB.identity, UDP, 53), ingress(9999, TCP, 1)]);
      const port = nextPort();
      expect(run('from-container', udpPacket({ src: A.ipv4, dst: WEB.ip, sport: port, dport: 53 }))).to.equal(PASS);
      const reply = udpPacket({ src: WEB.ip, dst: A.ipv4, sport: 53, dport: port });
      expect(run('to-container', ipv4Fragment(reply, { id: 7, offset: 0, more: true }))).to.equal(PASS);
      expect(run('to-container', ipv4Fragment(reply, { id: 7, offset: 185, more: false }))).to.equal(PASS);
    });

    it('drops an allow that requires authentication (189) and reports the deciding rule\'s cookie', async function () {
      await policyA([{ ...egress(WEB.identity, TCP, 80), authType: 1, cookie: 9 }, { ...egress(DB.identity, TCP, 80), cookie: 42 }]);
      expect(synFromA(WEB.ip, 80)).to.equal(DROP);
      expect(synFromA(DB.ip, 80)).to.equal(PASS);
      expect(dropsAndVerdicts()).to.deep.equal([
        ['policy-verdict', 189, 'egress', 9],
        ['drop', 189, 'egress', 9],
        ['policy-verdict', 0, 'egress', 42],
      ]);
    });
  });
});
