// `npm run bench:datapath`: the datapath side by side with no program and with iptables, in one
// run, on two pod namespaces routed through the host. Progress goes to stderr; the last stdout line
// is one JSON object (throughput in Gbit/s, per-packet cost in ns, table sizes). Everything it
// creates (netns, links, tc filters, pins, the iptables chain) is removed at the end, on
// SIGINT/SIGTERM, and at the start of the next run if a run was killed outright.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { BpfObject } from '../../datapath/libbpf/object.js';
import { NOOP_OBJECT_PATH } from '../../datapath/linux/paths.js';
import { POLICY_MAP_MAX_ENTRIES } from '../../datapath/maps/policy.js';
import type { LinuxDatapath } from '../../datapath/linux/linux-datapath.js';
import type { IPCacheEntry, PolicyEntry } from '../../datapath/types.js';
import { registerCleanup } from '../envtest/cleanup.js';
import { BpffsScratch, endpointFor, openDatapath } from '../datapath/harness.js';
import { measureIperf } from './iperf.js';
import { IptablesChain } from './iptables-chain.js';
import { median, nsPerPacket, nsPerSingleRun } from './per-packet.js';
import { TCP_ACK, TCP_SYN, tcpPacket } from '../../datapath/linux/testing/packets.js';
import type { PerPacket, TestRunner } from './per-packet.js';
import { runCommand } from '../../datapath/netns/run.js';

const PREFIX = 'ctbench';
const POLICY_ENTRIES = 10_000;
const IPCACHE_ENTRIES = 100_000;
const TABLE_SIZES = [100, 1_000, 10_000, 100_000];
// The policy map holds at most 16,384 entries (upstream's bpf-policy-map-max default), so the
// largest table size keeps its policy just under that.
const POLICY_CAP = POLICY_MAP_MAX_ENTRIES - 384;
const PORT = 5201;
const EP = { client: 1, server: 2 } as const;
const ID = { client: 50001, server: 50002, denied: 49999 } as const;
const REPEAT = 1_000_000;
const NEW_FLOWS = 5_000;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const SETUPS = ['none', 'cilium_ts', 'iptables'] as const;
type Setup = (typeof SETUPS)[number];

interface Options {
  seconds: number;
  rounds: number;
}

function parseOptions(argv: string[]): Options | 'cleanup' {
  if (argv.includes('--cleanup')) return 'cleanup';
  const value = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${String(argv[i + 1])}`);
    return n;
  };
  return { seconds: value('--seconds', 5), rounds: value('--rounds', 3) };
}

function progress(message: string): void {
  console.error(`[bench:datapath] ${message}`);
}

/** Synthetic peers in 10.100.0.0/14, apart from the pod subnets (10.200-249.x.x). */
function syntheticIp(i: number): string {
  return `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}

function ipcacheRows(total: number, pods: IPCacheEntry[]): IPCacheEntry[] {
  const rows = [...pods, { prefix: `${syntheticIp(0)}/32`, identity: ID.denied }];
  for (let i = 1; rows.length < total; i++) rows.push({ prefix: `${syntheticIp(i)}/32`, identity: 30_000 + (i % 5_000) });
  return rows;
}

/** Entries a policy engine would write for other peers, then the client's allow and one deny. */
function serverPolicy(total: number): PolicyEntry[] {
  const rows: PolicyEntry[] = [
    { identity: ID.client, direction: 'ingress', protocol: 6, port: PORT, deny: false },
    { identity: ID.denied, direction: 'ingress', protocol: 0, port: 0, deny: true },
  ];
  for (let i = 0; rows.length < total; i++) rows.push({ identity: 40_000 + i, direction: 'ingress', protocol: 6, port: 1_000 + (i % 50_000), deny: false });
  return rows;
}

async function sweepLeftovers(): Promise<void> {
  await IptablesChain.remove();
  await PodNetwork.sweep(PREFIX);
  BpffsScratch.sweep(PREFIX);
}

interface PathCosts {
  allow_new: number;
  allow_established: number;
  deny: number;
  deny_listed: number;
}

class Bench {
  private net?: PodNetwork;
  private bpffs?: BpffsScratch;
  private dp?: LinuxDatapath;
  private chain?: IptablesChain;
  // Source ports of single-run flows: every one is new to conntrack.
  private nextSport = 1024;
  private cleaning?: Promise<void>;

  constructor(private readonly opts: Options) {}

  async run(): Promise<Record<string, unknown>> {
    await sweepLeftovers();
    this.net = await PodNetwork.create({ prefix: PREFIX, pods: ['client', 'server'] });
    this.bpffs = BpffsScratch.create(PREFIX);
    this.dp = await openDatapath(this.bpffs.dir);
    const net = this.net;
    const client = net.pod('client');
    const server = net.pod('server');
    const podRows = [
      { prefix: `${client.ip}/32`, identity: ID.client },
      { prefix: `${server.ip}/32`, identity: ID.server },
    ];
    progress(`ipcache ${IPCACHE_ENTRIES}, policy ${POLICY_ENTRIES}, iptables ${POLICY_ENTRIES} rules; pods ${client.ip} -> ${server.ip}`);
    const ipcache = await this.dp.syncIPCache(ipcacheRows(IPCACHE_ENTRIES, podRows));
    this.chain = await IptablesChain.create(POLICY_ENTRIES, { client: client.ip, server: server.ip, port: PORT, subnet: `${net.gateway.replace(/\.1$/, '.0')}/24` });

    const runs: Record<Setup, number[]> = { none: [], cilium_ts: [], iptables: [] };
    for (let round = 0; round < this.opts.rounds; round++) {
      // Each round starts with a different setup, so load that drifts over the run (the machine is
      // shared) does not always land on the same one.
      for (let i = 0; i < SETUPS.length; i++) {
        const setup = SETUPS[(round + i) % SETUPS.length]!;
        const gbps = await this.throughput(setup);
        runs[setup].push(gbps);
        progress(`round ${round + 1}: ${setup} ${gbps.toFixed(2)} Gbit/s`);
      }
    }

    const noop = this.noopCosts();
    await this.attach(POLICY_ENTRIES);
    const main = this.pathCosts();
    progress(`per packet at ${POLICY_ENTRIES}/${IPCACHE_ENTRIES}: ${JSON.stringify(main)} (noop ${noop.repeated} / ${noop.single} single)`);
    const bySize: Record<string, unknown> = {};
    for (const size of TABLE_SIZES) {
      const policy = Math.min(size, POLICY_CAP);
      await this.dp.syncIPCache(ipcacheRows(size, podRows));
      await this.dp.syncPolicy(EP.server, serverPolicy(policy));
      bySize[String(size)] = { policy_entries: policy, ipcache_entries: size, ...this.pathCosts() };
      progress(`per packet at size ${size}: ${JSON.stringify(bySize[String(size)])}`);
    }

    const throughput = { none: median(runs.none), cilium_ts: median(runs.cilium_ts), iptables: median(runs.iptables) };
    return {
      throughput_gbps: throughput,
      ns_per_packet: { noop: noop.repeated, allow_new: main.allow_new, allow_established: main.allow_established, deny: main.deny },
      policy_entries: POLICY_ENTRIES,
      ipcache_entries: IPCACHE_ENTRIES,
      cilium_ts_vs_none: throughput.cilium_ts / throughput.none,
      iptables_vs_none: throughput.iptables / throughput.none,
      throughput_runs_gbps: runs,
      iperf_seconds: this.opts.seconds,
      iptables_rules: this.chain.ruleCount,
      iptables_version: (await runCommand('iptables version', 'iptables', ['-V'])).stdout.trim(),
      ipcache_initial_sync: ipcache,
      ns_per_packet_detail: {
        noop_single_run: noop.single,
        deny_listed: main.deny_listed,
        method: `repeat ${REPEAT} (median of 5) for noop, allow_established, deny; allow_new is the median of ${NEW_FLOWS} single runs of distinct new flows, comparable with noop_single_run`,
      },
      ns_per_packet_by_table_size: bySize,
    };
  }

  private async throughput(setup: Setup): Promise<number> {
    const measure = async (): Promise<number> => (await measureIperf(this.net!, 'client', 'server', this.opts.seconds, PORT)).gbps;
    switch (setup) {
      case 'none':
        return measure();
      case 'cilium_ts':
        await this.attach(POLICY_ENTRIES);
        try {
          return await measure();
        } finally {
          await this.detach();
        }
      case 'iptables':
        await this.chain!.enable();
        try {
          return await measure();
        } finally {
          await this.chain!.disable();
        }
    }
  }

  private async attach(policyEntries: number): Promise<void> {
    const dp = this.dp!;
    await dp.upsertEndpoint(endpointFor(this.net!.pod('client'), EP.client, ID.client));
    await dp.upsertEndpoint(endpointFor(this.net!.pod('server'), EP.server, ID.server));
    await dp.syncPolicy(EP.server, serverPolicy(policyEntries));
  }

  private async detach(): Promise<void> {
    await this.dp!.removeEndpoint(EP.client);
    await this.dp!.removeEndpoint(EP.server);
  }

  private noopCosts(): { repeated: number; single: number } {
    const obj = BpfObject.open(NOOP_OBJECT_PATH);
    try {
      obj.load();
      const prog = obj.program('cil_noop');
      try {
        const run: TestRunner = (data, repeat) => prog.testRun({ data, repeat });
        const frame = (sport: number): Buffer => tcpPacket({ src: '10.9.0.1', dst: '10.9.0.2', sport, dport: PORT, flags: TCP_SYN });
        return { repeated: nsPerPacket(run, frame(40_000), REPEAT).ns, single: nsPerSingleRun(run, (i) => frame(1024 + (i % 60_000)), NEW_FLOWS).ns };
      } finally {
        prog.close();
      }
    } finally {
      obj.close();
    }
  }

  /** The server's ingress program (cil_to_container) on each path; the verdict must be the expected one. */
  private pathCosts(): PathCosts {
    const dp = this.dp!;
    const run: TestRunner = (data, repeat) => dp.testRun('to-container', data, repeat);
    const client = this.net!.pod('client').ip;
    const server = this.net!.pod('server').ip;
    const expectVerdict = (what: string, r: PerPacket, retval: number): number => {
      if (r.retval !== retval) throw new Error(`per-packet ${what}: program returned ${r.retval}, expected ${retval}; the measured path is not the one intended`);
      return r.ns;
    };
    const first = this.nextSport;
    this.nextSport += NEW_FLOWS + 1;
    if (this.nextSport > 65_535) throw new Error('per-packet: ran out of fresh source ports for new flows');
    const allowNew = nsPerSingleRun(run, (i) => tcpPacket({ src: client, dst: server, sport: first + i, dport: PORT, flags: TCP_SYN }), NEW_FLOWS);
    const established = first + NEW_FLOWS;
    run(tcpPacket({ src: client, dst: server, sport: established, dport: PORT, flags: TCP_SYN }), 1);
    const allowEstablished = nsPerPacket(run, tcpPacket({ src: client, dst: server, sport: established, dport: PORT, flags: TCP_ACK }), REPEAT);
    const deny = nsPerPacket(run, tcpPacket({ src: syntheticIp(1), dst: server, sport: 40_000, dport: PORT, flags: TCP_SYN }), REPEAT);
    const denyListed = nsPerPacket(run, tcpPacket({ src: syntheticIp(0), dst: server, sport: 40_000, dport: PORT, flags: TCP_SYN }), REPEAT);
    return {
      allow_new: expectVerdict('allow_new', allowNew, TC_ACT_OK),
      allow_established: expectVerdict('allow_established', allowEstablished, TC_ACT_OK),
      deny: expectVerdict('deny', deny, TC_ACT_SHOT),
      deny_listed: expectVerdict('deny_listed', denyListed, TC_ACT_SHOT),
    };
  }

  /**
   * Removes everything, collecting failures so one does not keep the rest in place. A signal and
   * the interrupted run's own `finally` both call it; they share the one cleanup.
   */
  cleanup(): Promise<void> {
    this.cleaning ??= this.removeAll();
    return this.cleaning;
  }

  private async removeAll(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<void> | void): Promise<void> => {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    };
    await attempt(() => IptablesChain.remove());
    await attempt(() => this.dp?.close());
    await attempt(() => this.net?.destroy());
    await attempt(() => this.bpffs?.remove());
    if (errors.length > 0) throw new AggregateError(errors, `bench cleanup: ${errors.length} steps failed`);
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === 'cleanup') {
    await sweepLeftovers();
    return;
  }
  const bench = new Bench(opts);
  const self = fileURLToPath(import.meta.url);
  const unregister = registerCleanup({
    name: 'datapath benchmark',
    stop: () => bench.cleanup(),
    // At 'exit' only synchronous work runs: a child process does the sweep.
    stopNow: () => void spawnSync(process.execPath, ['--import', 'tsx', self, '--cleanup'], { stdio: 'inherit' }),
  });
  try {
    const result = await bench.run();
    console.log(JSON.stringify(result));
  } finally {
    await bench.cleanup();
    unregister();
  }
}

await main();
