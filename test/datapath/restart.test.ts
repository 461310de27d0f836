// Restart safety: while a TCP stream runs between two pods, the process owning the datapath exits
// and a new one adopts the pins, re-syncs the same desired state and prunes what it does not name.
// The stream must lose nothing and a denied peer must stay denied through the handover.
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { tcQuery } from '../../datapath/libbpf/tc.js';
import { BpfMap } from '../../datapath/libbpf/map.js';
import { encodeIpcacheKey } from '../../datapath/maps/ipcache.js';
import { policyMapName } from '../../datapath/linux/paths.js';
import type { PolicyEntry } from '../../datapath/types.js';
import type { DesiredState } from './owner-protocol.js';
import { PodAgent } from './pod-agent.js';
import { OwnerProcess } from './owner-process.js';
import { BpffsScratch, endpointFor } from './harness.js';

const PREFIX = 'ctrs';
const EP = { client: 201, server: 202, other: 203, stale: 204 } as const;
const ID = { client: 20001, server: 20002, other: 20003, stale: 20004 } as const;
const STALE_IPCACHE = { identity: 29999 };
const PORT = 8080;

/** Probes a denied connection over and over until stopped; counts attempts and any that got through. */
class DeniedProber {
  attempts = 0;
  admitted = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(agent: PodAgent, host: string, port: number) {
    this.loop = (async () => {
      while (!this.stopped) {
        this.attempts++;
        if (await agent.canConnect(host, port, 300)) this.admitted++;
      }
    })();
  }

  async stop(): Promise<{ attempts: number; admitted: number }> {
    this.stopped = true;
    await this.loop;
    return { attempts: this.attempts, admitted: this.admitted };
  }
}

describe('datapath restart: a new process adopts the pins without a gap', function () {
  this.timeout(120_000);
  let net: PodNetwork;
  let bpffs: BpffsScratch;
  let stateDir: string;
  const agents = new Map<string, PodAgent>();
  const owners: OwnerProcess[] = [];

  before(async () => {
    await PodNetwork.sweep(PREFIX);
    BpffsScratch.sweep(PREFIX);
    net = await PodNetwork.create({ prefix: PREFIX, pods: ['client', 'server', 'other', 'stale'] });
    bpffs = BpffsScratch.create(PREFIX);
    stateDir = mkdtempSync(path.join(os.tmpdir(), `cilium-ts-${PREFIX}-`));
    for (const pod of ['client', 'server', 'other']) agents.set(pod, await PodAgent.start(net, pod));
    await agents.get('server')!.listen(PORT);
  });

  after(async () => {
    for (const o of owners) o.kill();
    for (const a of agents.values()) await a.stop().catch(() => undefined);
    await net?.destroy();
    bpffs?.remove();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  function desired(withStale: boolean): DesiredState {
    const pods = withStale ? (['client', 'server', 'other', 'stale'] as const) : (['client', 'server', 'other'] as const);
    const serverIngress: PolicyEntry[] = [{ identity: ID.client, direction: 'ingress', protocol: 6, port: PORT, deny: false }];
    const staleIp = net.pod('stale').ip.replace(/\.\d+$/, '.250');
    return {
      endpoints: pods.map((p) => endpointFor(net.pod(p), EP[p], ID[p])),
      ipcache: [
        ...pods.map((p) => ({ prefix: `${net.pod(p).ip}/32`, identity: ID[p] })),
        ...(withStale ? [{ prefix: `${staleIp}/32`, identity: STALE_IPCACHE.identity }] : []),
      ],
      policies: [
        { endpointId: EP.server, entries: serverIngress },
        ...(withStale ? [{ endpointId: EP.stale, entries: [{ identity: 0, direction: 'ingress' as const, protocol: 6, port: 22, deny: false }] }] : []),
      ],
    };
  }

  async function handover(how: 'exit' | 'crash', run: string): Promise<void> {
    const client = agents.get('client')!;
    const server = agents.get('server')!;
    const serverIp = net.pod('server').ip;
    const stalePod = net.pod('stale');
    const staleIpcachePrefix = `${stalePod.ip.replace(/\.\d+$/, '.250')}/32`;

    const first = await OwnerProcess.start(`${run}-first`, bpffs.dir, desired(true), stateDir);
    owners.push(first);
    expect(first.report.pruned).to.deep.equal([]);
    expect(tcQuery({ ifindex: stalePod.hostIfindex, direction: 'ingress' }), 'stale endpoint attached by the first owner').to.be.a('number');
    expect(existsSync(path.join(bpffs.dir, policyMapName(EP.stale)))).to.equal(true);

    expect(await agents.get('other')!.canConnect(serverIp, PORT, 800), 'other is denied before the handover').to.equal(false);
    const bytesBefore = (await server.serverStats(PORT)).bytesIn;
    await client.open(run, serverIp, PORT);
    await client.startStream(run);
    const prober = new DeniedProber(agents.get('other')!, serverIp, PORT);
    await sleep(500);

    if (how === 'exit') expect(await first.exit(), 'first owner exit code').to.equal(0);
    else expect(await first.crash(), 'first owner killed').to.equal('SIGKILL');
    // No process owns the datapath now; the kernel keeps enforcing from the pins and tc filters.
    await sleep(500);
    const second = await OwnerProcess.start(`${run}-second`, bpffs.dir, desired(false), stateDir);
    owners.push(second);
    await sleep(500);

    const probes = await prober.stop();
    const stream = await client.stopStream(run);
    const received = (await server.serverStats(PORT)).bytesIn - bytesBefore;
    await client.close(run);

    expect(probes.attempts, 'probes made during the handover').to.be.greaterThan(3);
    expect(probes.admitted, 'denied connections admitted during the handover').to.equal(0);
    expect(stream.sent).to.be.greaterThan(0);
    expect(stream.mismatches, 'bytes corrupted or reordered').to.equal(0);
    expect(stream.received, 'bytes echoed back to the client').to.equal(stream.sent);
    expect(received, 'bytes the server received').to.equal(stream.sent);

    expect(second.report.pruned).to.deep.equal([EP.stale]);
    expect(second.report.policies[EP.server], 'identical policy re-sync').to.deep.equal({ added: 0, updated: 0, removed: 0 });
    expect(second.report.ipcache, 'ipcache re-sync removes only the stale pod and the stale row').to.deep.equal({ added: 0, updated: 0, removed: 2 });
    expect(tcQuery({ ifindex: stalePod.hostIfindex, direction: 'ingress' }), 'stale endpoint detached').to.equal(undefined);
    expect(tcQuery({ ifindex: stalePod.hostIfindex, direction: 'egress' })).to.equal(undefined);
    expect(existsSync(path.join(bpffs.dir, policyMapName(EP.stale))), 'stale policy map unpinned').to.equal(false);
    const ipcache = BpfMap.openPinned(path.join(bpffs.dir, 'cilium_ipcache'));
    try {
      expect(ipcache.lookup(encodeIpcacheKey(staleIpcachePrefix))).to.equal(undefined);
      expect(ipcache.lookup(encodeIpcacheKey(`${stalePod.ip}/32`))).to.equal(undefined);
      expect(ipcache.lookup(encodeIpcacheKey(`${serverIp}/32`))).to.not.equal(undefined);
    } finally {
      ipcache.close();
    }
    expect(tcQuery({ ifindex: net.pod('server').hostIfindex, direction: 'egress' }), 'server still attached').to.be.a('number');
    expect(await second.exit()).to.equal(0);
  }

  it('the owner exits: the stream loses nothing, a denied peer stays denied, the new owner prunes the stale endpoint', async () => {
    await handover('exit', 'exit');
  });

  it('the owner is killed (SIGKILL): the same holds without any of its cleanup running', async () => {
    await handover('crash', 'crash');
  });
});
