// Restart safety: while a TCP stream runs between two pods, the process owning the datapath exits
// and a new one adopts the pins, re-syncs the same desired state and prunes what it does not name.
// The stream must lose nothing and a denied peer must stay denied through the handover. TCP would
// hide a short gap (a dropped segment is retransmitted), so the datapath's own records are
// checked too: every drop counted during the handover is one of the denied peer's SYNs, each of
// those SYNs has its drop record, and the server's ingress conntrack never saw the denied peer.
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { tcQuery } from '../../datapath/libbpf/tc.js';
import { BpfMap } from '../../datapath/libbpf/map.js';
import { encodeIpcacheKey } from '../../datapath/maps/ipcache.js';
import { encodeEndpointKey } from '../../datapath/maps/lxc.js';
import { REASON_FORWARDED } from '../../datapath/maps/metrics.js';
import { IPPROTO_TCP } from '../../datapath/maps/protocols.js';
import { policyMapName } from '../../datapath/linux/paths.js';
import { makePinDir, removePinDir } from '../../datapath/linux/testing/fixtures.js';
import type { DropEvent, MetricCount, PolicyEntry } from '../../datapath/types.js';
import type { DesiredState, Observation } from './owner-protocol.js';
import { PodAgent } from './pod-agent.js';
import { OwnerProcess } from './owner-process.js';
import { ChildSet } from './children.js';
import { runCleanup } from './cleanup-steps.js';
import { DROP_POLICY, endpointFor, isDrop } from './harness.js';

const PREFIX = 'ctrs';
const PODS = ['client', 'server', 'other', 'stale'] as const;
type PodName = (typeof PODS)[number];
const EP = { client: 201, server: 202, other: 203, stale: 204 } as const;
const ID = { client: 20001, server: 20002, other: 20003, stale: 20004 } as const;
const STALE_IPCACHE = { identity: 29999 };
const PORT = 8080;

function dropsCounted(metrics: readonly MetricCount[]): number {
  return metrics.filter((m) => m.reason !== REASON_FORWARDED).reduce((sum, m) => sum + m.count, 0);
}

describe('datapath restart: a new process adopts the pins without a gap', function () {
  this.timeout(120_000);
  let net: PodNetwork | undefined;
  let pinDir: string | undefined;
  let stateDir: string | undefined;
  const agents = new Map<PodName, PodAgent>();
  const children = new ChildSet();

  const pod = (name: PodName): ReturnType<PodNetwork['pod']> => net!.pod(name);
  const agent = (name: PodName): PodAgent => agents.get(name)!;

  before(async () => {
    await PodNetwork.sweep(PREFIX);
    net = await PodNetwork.create({ prefix: PREFIX, pods: PODS });
    pinDir = makePinDir();
    stateDir = mkdtempSync(path.join(os.tmpdir(), `cilium-ts-${PREFIX}-`));
    for (const name of ['client', 'server', 'other'] as const) agents.set(name, await PodAgent.start(net, name, children));
    await agent('server').listen(PORT);
  });

  after(() =>
    runCleanup('restart test teardown', [
      ['stop pod agents', () => Promise.all([...agents.values()].map((a) => a.stop()))],
      ['kill owners and agents', () => children.killAll()],
      ['destroy pod network', () => net?.destroy()],
      ['remove pin dir', () => removePinDir(pinDir)],
      ['remove state dir', () => stateDir && rmSync(stateDir, { recursive: true, force: true })],
    ]),
  );

  function desired(withStale: boolean): DesiredState {
    const pods = PODS.filter((p) => withStale || p !== 'stale');
    const serverIngress: PolicyEntry[] = [{ identity: ID.client, direction: 'ingress', protocol: IPPROTO_TCP, port: PORT, deny: false }];
    const staleIp = pod('stale').ip.replace(/\.\d+$/, '.250');
    return {
      endpoints: pods.map((p) => endpointFor(pod(p), EP[p], ID[p])),
      ipcache: [
        ...pods.map((p) => ({ prefix: `${pod(p).ip}/32`, identity: ID[p] })),
        ...(withStale ? [{ prefix: `${staleIp}/32`, identity: STALE_IPCACHE.identity }] : []),
      ],
      // Every endpoint gets a policy (an empty one allows all): a new endpoint drops until then.
      policies: pods.map((p) => ({
        endpointId: EP[p],
        entries: p === 'server' ? serverIngress : p === 'stale' ? [{ identity: 0, direction: 'ingress' as const, protocol: IPPROTO_TCP, port: 22, deny: false }] : [],
      })),
    };
  }

  /** Stream and denied-peer checks over what the datapath recorded between two observations. */
  function checkHandoverRecords(before: Observation, after: Observation, probeSourcePorts: readonly number[]): void {
    const clientIp = pod('client').ip;
    const serverIp = pod('server').ip;
    const otherIp = pod('other').ip;
    const drops = after.events.filter(isDrop);
    const streamDrops = drops.filter(
      (d) => (d.packet.srcIp === clientIp && d.packet.dstIp === serverIp) || (d.packet.srcIp === serverIp && d.packet.dstIp === clientIp),
    );
    expect(streamDrops, 'drop records of the stream between client and server').to.deep.equal([]);

    const probeDrops = drops.filter((d): d is DropEvent => d.packet.srcIp === otherIp && d.packet.dstIp === serverIp && d.packet.dstPort === PORT);
    expect(probeDrops.length, 'every drop during the handover is one of the denied peer\'s SYNs').to.equal(drops.length);
    for (const d of probeDrops) expect(d).to.deep.include({ reason: DROP_POLICY, endpointId: EP.server, srcIdentity: ID.other, dstIdentity: ID.server, direction: 'ingress' });
    const droppedPorts = new Set(probeDrops.map((d) => d.packet.srcPort));
    expect(probeSourcePorts.filter((p) => !droppedPorts.has(p)), 'probe SYNs without a drop record (they met no program or no policy)').to.deep.equal([]);

    // cilium_metrics counts every drop, with or without room in the event ring: a stream packet
    // dropped anywhere would show as a counted drop without a probe's record.
    expect(dropsCounted(after.metrics) - dropsCounted(before.metrics), 'drops counted in cilium_metrics during the handover').to.equal(drops.length);

    const serverIngress = after.conntrack.filter((c) => c.tuple.hook === 'ingress' && c.tuple.daddr === serverIp);
    expect(
      serverIngress.some((c) => c.tuple.saddr === clientIp && c.tuple.dport === PORT),
      'the stream\'s entry at the server ingress (so this conntrack read can see such entries)',
    ).to.equal(true);
    expect(serverIngress.filter((c) => c.tuple.saddr === otherIp), 'server-ingress conntrack entries of the denied peer').to.deep.equal([]);
  }

  async function handover(how: 'exit' | 'crash', run: string): Promise<void> {
    const client = agent('client');
    const server = agent('server');
    const serverIp = pod('server').ip;
    const stalePod = pod('stale');
    const staleIpcachePrefix = `${stalePod.ip.replace(/\.\d+$/, '.250')}/32`;

    const { owner: first, report: firstReport } = await OwnerProcess.start(`${run}-first`, pinDir!, desired(true), stateDir!, children);
    expect(firstReport.pruned).to.deep.equal([]);
    expect(tcQuery({ ifindex: stalePod.hostIfindex, hook: 'tc-ingress' }), 'stale endpoint attached by the first owner').to.be.a('number');
    expect(existsSync(path.join(pinDir!, policyMapName(EP.stale)))).to.equal(true);
    expect(await agent('other').canConnect(serverIp, PORT, 800), 'other is denied before the handover').to.equal(false);

    await client.open(run, serverIp, PORT);
    const bytesBefore = (await server.serverStats(PORT)).bytesIn;
    const before = await first.observe();
    await client.startStream(run);
    await agent('other').startProbe(run, serverIp, PORT);
    await sleep(500);

    if (how === 'exit') expect(await first.exit(), 'first owner exit code').to.equal(0);
    else expect(await first.crash(), 'first owner killed').to.equal('SIGKILL');
    // No process owns the datapath now; the kernel keeps enforcing from the pins and tc filters.
    await sleep(500);
    const { owner: second, report: secondReport } = await OwnerProcess.start(`${run}-second`, pinDir!, desired(false), stateDir!, children);
    await sleep(500);

    const probes = await agent('other').stopProbe(run);
    const stream = await client.stopStream(run);
    const received = (await server.serverStats(PORT)).bytesIn - bytesBefore;
    const after = await second.observe();
    await client.close(run);

    // Attempts every 10 ms over 1.5 s and more; a handful would mean the prober stalled.
    expect(probes.attempts, 'denied connection attempts during the handover').to.be.greaterThan(50);
    expect(probes.sourcePorts.length).to.equal(probes.attempts);
    expect(probes.admitted, 'denied connections admitted during the handover').to.equal(0);
    expect(stream.sent).to.be.greaterThan(0);
    expect(stream.mismatches, 'bytes corrupted or reordered').to.equal(0);
    expect(stream.received, 'bytes echoed back to the client').to.equal(stream.sent);
    expect(received, 'bytes the server received').to.equal(stream.sent);
    checkHandoverRecords(before, after, probes.sourcePorts);

    expect(secondReport.pruned).to.deep.equal([EP.stale]);
    expect(secondReport.policies[EP.server], 'identical policy re-sync').to.deep.equal({ added: 0, updated: 0, removed: 0 });
    expect(secondReport.ipcache, 'ipcache re-sync removes only the stale pod and the stale row').to.deep.equal({ added: 0, updated: 0, removed: 2 });
    // The pruned pod's veth keeps the programs, which drop everything without its cilium_lxc entry.
    expect(tcQuery({ ifindex: stalePod.hostIfindex, hook: 'tc-ingress' }), 'pruned endpoint\'s veth still filtered').to.be.a('number');
    expect(tcQuery({ ifindex: stalePod.hostIfindex, hook: 'tc-egress' })).to.be.a('number');
    const lxc = BpfMap.openPinned(path.join(pinDir!, 'cilium_lxc'));
    try {
      expect(lxc.lookup(encodeEndpointKey(stalePod.ip)), 'pruned endpoint\'s cilium_lxc entry').to.equal(undefined);
    } finally {
      lxc.close();
    }
    expect(existsSync(path.join(pinDir!, policyMapName(EP.stale))), 'stale policy map unpinned').to.equal(false);
    const ipcache = BpfMap.openPinned(path.join(pinDir!, 'cilium_ipcache_v2'));
    try {
      expect(ipcache.lookup(encodeIpcacheKey(staleIpcachePrefix))).to.equal(undefined);
      expect(ipcache.lookup(encodeIpcacheKey(`${stalePod.ip}/32`))).to.equal(undefined);
      expect(ipcache.lookup(encodeIpcacheKey(`${serverIp}/32`))).to.not.equal(undefined);
    } finally {
      ipcache.close();
    }
    expect(tcQuery({ ifindex: pod('server').hostIfindex, hook: 'tc-egress' }), 'server still attached').to.be.a('number');
    expect(await second.exit()).to.equal(0);
  }

  it('the owner exits: the stream loses nothing, a denied peer stays denied, the new owner prunes the stale endpoint', async () => {
    await handover('exit', 'exit');
  });

  it('the owner is killed (SIGKILL): the same holds without any of its cleanup running', async () => {
    await handover('crash', 'crash');
  });
});
