// The lookup model (datapath/maps/lookup-model.ts) against the kernel: random policies and packets,
// each judged by the model and by the endpoint programs through BPF_PROG_TEST_RUN. The pure
// engine's property tests trust the model; this keeps the model honest.
import { expect } from 'chai';
import { newLogger } from '../../controllers/runtime/log.js';
import { ipcacheLookup, policyAllows, type ModelPacket } from '../maps/lookup-model.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../maps/protocols.js';
import type { Enforcement, IPCacheEntry, PolicyDirection, PolicyEntry } from '../types.js';
import { LinuxDatapath } from './linux-datapath.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, type TestLink } from './testing/fixtures.js';
import { icmpPacket, tcpPacket, TCP_SYN, udpPacket } from './testing/packets.js';

const CASES = 200;
const SEED = Number(process.env.VERDICT_MODEL_SEED ?? 20261129);
const EP = { id: 301, ipv4: '10.230.0.1', identity: 51001 };
// Peers: a few /24s with identities, everything else world.
const IPCACHE: IPCacheEntry[] = [1, 2, 3].map((i) => ({ prefix: `10.231.${i}.0/24`, identity: 61000 + i }));
const IDENTITIES = [0, 2, ...IPCACHE.map((r) => r.identity)];
const PROTOCOLS = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP];
// ICMP types the programs treat as nothing special: echo and errors have conntrack rules of their own.
const ICMP_TYPES = [0, 8, 5, 9, 13, 14, 15, 17];

/** mulberry32: small, seeded, enough to replay a failing case from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('lookup model against the endpoint programs (BPF_PROG_TEST_RUN)', function () {
  let link: TestLink | undefined;
  let pinDir: string | undefined;
  let dp: LinuxDatapath | undefined;

  before(async function () {
    link = await createTestLink('vm');
    pinDir = makePinDir();
    dp = await LinuxDatapath.open({ bpffsDir: pinDir, logger: newLogger('verdict-model-test', 'warn') });
    await dp.upsertEndpoint({ ...EP, ifname: link.ifname, ifindex: link.ifindex, mac: '02:00:00:00:03:01', nodeMac: link.mac });
    await dp.syncIPCache('endpoint', IPCACHE);
  });
  after(async function () {
    try {
      await dp?.pruneEndpoints([]);
      await dp?.close();
    } finally {
      removePinDir(pinDir);
      await removeTestLink(link);
    }
  });

  it(`gives the kernel's verdict in ${CASES} random cases (seed ${SEED})`, async function () {
    const rnd = random(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
    // Ports from a narrow band, so random entries and packets meet often.
    const port = (): number => int(79, 84);
    let flow = 1;

    function entry(): PolicyEntry {
      const protocol = pick([0, ...PROTOCOLS]);
      const base = { identity: pick(IDENTITIES), direction: pick<PolicyDirection>(['ingress', 'egress']), deny: rnd() < 0.25, authType: rnd() < 0.15 ? 1 : 0 };
      if (protocol === IPPROTO_ICMP) {
        const type = pick(ICMP_TYPES);
        return { ...base, protocol, port: rnd() < 0.2 ? 0 : type, endPort: rnd() < 0.3 ? Math.min(255, type + int(0, 9)) : undefined };
      }
      if (protocol === 0 && rnd() < 0.5) return { ...base, protocol, port: 0 };
      const first = rnd() < 0.15 ? 0 : port();
      return { ...base, protocol, port: first, endPort: first !== 0 && rnd() < 0.4 ? first + int(0, 3) : undefined };
    }
    function peerIp(): string {
      return rnd() < 0.25 ? `192.0.2.${int(1, 254)}` : `10.231.${int(1, 3)}.${int(1, 254)}`;
    }
    /** A frame of a flow never seen before, so policy, not conntrack, decides it. */
    function frame(pkt: ModelPacket, peer: string): Buffer {
      const [src, dst] = pkt.direction === 'egress' ? [EP.ipv4, peer] : [peer, EP.ipv4];
      const sport = 10000 + flow++;
      if (pkt.protocol === IPPROTO_TCP) return tcpPacket({ src, dst, sport, dport: pkt.port, flags: TCP_SYN });
      if (pkt.protocol === IPPROTO_UDP) return udpPacket({ src, dst, sport, dport: pkt.port });
      return icmpPacket({ src, dst, type: pkt.port, id: sport });
    }

    const mismatches: string[] = [];
    let passed = 0;
    for (let i = 0; i < CASES; i++) {
      const entries = Array.from({ length: int(0, 6) }, entry);
      const enforcement: Enforcement = { ingress: rnd() < 0.8, egress: rnd() < 0.8 };
      await dp!.syncPolicy(EP.id, entries, enforcement);
      const peer = peerIp();
      const protocol = pick(PROTOCOLS);
      const pkt: ModelPacket = {
        peerIdentity: ipcacheLookup(IPCACHE, peer),
        direction: pick<PolicyDirection>(['ingress', 'egress']),
        protocol,
        port: protocol === IPPROTO_ICMP ? pick(ICMP_TYPES) : port(),
      };
      const model = policyAllows(entries, enforcement, pkt);
      const kernel = dp!.testRun(pkt.direction === 'egress' ? 'from-container' : 'to-container', frame(pkt, peer)).retval === 0;
      if (kernel) passed++;
      if (model !== kernel) mismatches.push(`case ${i}: model ${model}, kernel ${kernel}: ${JSON.stringify({ pkt, enforcement, entries })}`);
    }
    dp!.drainEvents();
    expect(mismatches, `seed ${SEED}`).to.deep.equal([]);
    // Random cases that all pass, or all drop, would compare nothing.
    expect(passed, 'cases the kernel passed').to.be.within(CASES * 0.2, CASES * 0.8);
  });
});
