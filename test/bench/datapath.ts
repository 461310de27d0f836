// `npm run bench:datapath`: the datapath side by side with no program and with iptables, in one
// run, on two pod namespaces routed through the host. Progress goes to stderr; the last stdout line
// is one JSON object (throughput in Gbit/s, new connections per second, per-packet cost in ns,
// table sizes). Everything it creates (netns, links, tc filters, pins, the iptables chain) is
// removed at the end, on SIGINT/SIGTERM, and at the start of the next run if a run was killed
// outright.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { BpfObject } from '../../datapath/libbpf/object.js';
import { BPFFS_ROOT, NOOP_OBJECT_PATH } from '../../datapath/linux/paths.js';
import { POLICY_MAP_MAX_ENTRIES } from '../../datapath/maps/policy.js';
import { IPPROTO_TCP } from '../../datapath/maps/protocols.js';
import type { LinuxDatapath } from '../../datapath/linux/linux-datapath.js';
import { removePinDir } from '../../datapath/linux/testing/fixtures.js';
import type { IPCacheEntry, PolicyEntry } from '../../datapath/types.js';
import { endpointFor, openDatapath } from '../datapath/harness.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { measureConnRate } from './conn-rate.js';
import { CrossNodeBench } from './cross-node.js';
import { measureIperf } from './iperf.js';
import { IptablesChain } from './iptables-chain.js';
import { median, nsPerPacket, nsPerSingleRun } from './per-packet.js';
import { TCP_ACK, TCP_SYN, tcpPacket } from '../../datapath/linux/testing/packets.js';
import type { BatchHook, PerPacket, TestRunner } from './per-packet.js';
import { runCommand } from '../../datapath/netns/run.js';
import { tcHookDestroy } from '../../datapath/libbpf/tc.js';
import { benchMain, positiveIntFlag } from './main.js';

const PREFIX = 'ctbench';
// A fixed pin directory (one benchmark runs at a time), so the next run or the exit-time sweep
// can remove what a killed run left.
const PIN_DIR = path.join(BPFFS_ROOT, 'cilium-ts-bench');
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
// The server enforces ingress (its policy), the client nothing.
const SERVER_ENFORCEMENT = { ingress: true, egress: false } as const;
const SINGLE_RUNS = 5_000;
// A denied or new-flow run writes two event records (policy verdict and drop or trace) of about
// 110 bytes into the 4 MiB cilium_events ring, so ~19,000 runs fill it. Draining every 2,000 runs
// keeps the measured path the real one (record written), and the drained count proves it.
const RUNS_BETWEEN_DRAINS = 2_000;
const DRAINED_ROUNDS = 25;
// Enough runs to fill the ring many times over: what a flood of denied packets costs once no
// record fits any more.
const RING_FILL_RUNS = 200_000;
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
  const value = (flag: string, fallback: number): number => positiveIntFlag(argv, flag, fallback);
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
    { identity: ID.client, direction: 'ingress', protocol: IPPROTO_TCP, port: PORT, deny: false },
    { identity: ID.denied, direction: 'ingress', protocol: 0, port: 0, deny: true },
  ];
  for (let i = 0; rows.length < total; i++) rows.push({ identity: 40_000 + i, direction: 'ingress', protocol: IPPROTO_TCP, port: 1_000 + (i % 50_000), deny: false });
  return rows;
}

/** A number only counts when the program took the path meant (its verdict says which). */
function expectVerdict(what: string, r: PerPacket, retval: number): number {
  if (r.retval !== retval) throw new Error(`per-packet ${what}: program returned ${r.retval}, expected ${retval}; the measured path is not the one intended`);
  return r.ns;
}

async function sweepLeftovers(): Promise<void> {
  await runCleanup('bench sweep', [
    ['remove iptables chain', () => IptablesChain.remove()],
    ['remove pod network', () => PodNetwork.sweep(PREFIX)],
    ['remove pin dir', () => removePinDir(PIN_DIR)],
    ['remove cross-node namespaces and pins', () => CrossNodeBench.sweep()],
  ]);
}

/** The required paths by the single method: every number comparable with the single-run no-op. */
interface SingleRunCosts {
  allow_new: number;
  allow_established: number;
  deny: number;
}

/** The paths a run leaves unchanged, by the repeated method (compare with the repeated no-op). */
interface RepeatedCosts {
  allow_established: number;
  deny: number;
  deny_listed: number;
}

interface NoopCosts {
  single: number;
  repeated: number;
}

class Bench {
  private net?: PodNetwork;
  private dp?: LinuxDatapath;
  private chain?: IptablesChain;
  private crossNode?: CrossNodeBench;
  // Source ports of single-run flows: every one is new to conntrack.
  private nextSport = 1024;
  private cleaning?: Promise<void>;

  constructor(private readonly opts: Options) {}

  async run(): Promise<Record<string, unknown>> {
    await sweepLeftovers();
    this.net = await PodNetwork.create({ prefix: PREFIX, pods: ['client', 'server'] });
    this.dp = await openDatapath(PIN_DIR);
    const net = this.net;
    const client = net.pod('client');
    const server = net.pod('server');
    const podRows = [
      { prefix: `${client.ip}/32`, identity: ID.client },
      { prefix: `${server.ip}/32`, identity: ID.server },
    ];
    progress(`ipcache ${IPCACHE_ENTRIES}, policy ${POLICY_ENTRIES}, iptables ${POLICY_ENTRIES} rules; pods ${client.ip} -> ${server.ip}`);
    const ipcache = await this.dp.syncIPCache('endpoint', ipcacheRows(IPCACHE_ENTRIES, podRows));
    this.chain = await IptablesChain.create(POLICY_ENTRIES, { client: client.ip, server: server.ip, port: PORT, subnet: `${net.gateway.replace(/\.1$/, '.0')}/24` });

    const runs: Record<Setup, number[]> = { none: [], cilium_ts: [], iptables: [] };
    const connRuns: Record<Setup, number[]> = { none: [], cilium_ts: [], iptables: [] };
    for (let round = 0; round < this.opts.rounds; round++) {
      // Each round starts with a different setup, so load that drifts over the run (the machine is
      // shared) does not always land on the same one.
      for (let i = 0; i < SETUPS.length; i++) {
        const setup = SETUPS[(round + i) % SETUPS.length]!;
        const { gbps, connPerS } = await this.measureSetup(setup);
        runs[setup].push(gbps);
        connRuns[setup].push(connPerS);
        progress(`round ${round + 1}: ${setup} ${gbps.toFixed(2)} Gbit/s, ${connPerS.toFixed(0)} connections/s`);
      }
    }

    // Two more namespaces and two datapath processes, for the cross-node number only: gone again
    // before the per-packet measurements.
    this.crossNode = new CrossNodeBench(this.opts.seconds, this.opts.rounds, progress);
    const crossNode = await this.crossNode.run();
    await this.crossNode.cleanup();

    const noop = this.noopCosts();
    await this.attach(POLICY_ENTRIES);
    const single = this.singleRunCosts();
    const repeated = this.repeatedCosts();
    const denyRingFull = this.denyRingFullCost();
    progress(`per packet at ${POLICY_ENTRIES}/${IPCACHE_ENTRIES}: single ${JSON.stringify(single)} (noop ${noop.single}); repeated ${JSON.stringify(repeated)} (noop ${noop.repeated}), deny with a full ring ${denyRingFull}`);
    const bySize: Record<string, unknown> = {};
    for (const size of TABLE_SIZES) {
      const policy = Math.min(size, POLICY_CAP);
      await this.dp.syncIPCache('endpoint', ipcacheRows(size, podRows));
      await this.dp.syncPolicy(EP.server, serverPolicy(policy), SERVER_ENFORCEMENT);
      bySize[String(size)] = { policy_entries: policy, ipcache_entries: size, single_run: this.singleRunCosts(), repeated: this.repeatedCosts() };
      progress(`per packet at size ${size}: ${JSON.stringify(bySize[String(size)])}`);
    }

    const throughput = { none: median(runs.none), cilium_ts: median(runs.cilium_ts), iptables: median(runs.iptables) };
    return {
      throughput_gbps: throughput,
      // All four by the single method (median of single runs, each timed by the kernel on its own):
      // the only method a new flow allows, so noop, its floor, is measured the same way.
      ns_per_packet: { noop: noop.single, allow_new: single.allow_new, allow_established: single.allow_established, deny: single.deny },
      policy_entries: POLICY_ENTRIES,
      ipcache_entries: IPCACHE_ENTRIES,
      cilium_ts_vs_none: throughput.cilium_ts / throughput.none,
      iptables_vs_none: throughput.iptables / throughput.none,
      throughput_runs_gbps: runs,
      conn_per_s: { none: median(connRuns.none), cilium_ts: median(connRuns.cilium_ts), iptables: median(connRuns.iptables) },
      conn_per_s_runs: connRuns,
      cross_node_gbps: { none: crossNode.none, cilium_ts: crossNode.cilium_ts },
      cross_node_vs_none: crossNode.cilium_ts / crossNode.none,
      cross_node_runs_gbps: crossNode.runs,
      iperf_seconds: this.opts.seconds,
      iptables_rules: this.chain.ruleCount,
      iptables_version: (await runCommand('iptables version', 'iptables', ['-V'])).stdout.trim(),
      ipcache_initial_sync: ipcache,
      ns_per_packet_repeated: { noop: noop.repeated, ...repeated, deny_ring_full: denyRingFull },
      ns_per_packet_method: {
        ns_per_packet: `single method: median of ${SINGLE_RUNS} BPF_PROG_TEST_RUN calls with repeat 1; noop and allow_new on distinct flows, allow_established and deny on one flow; event ring drained every ${RUNS_BETWEEN_DRAINS} runs`,
        ns_per_packet_repeated: `repeated method: median of rounds of the kernel's mean per run; noop and allow_established ${REPEAT} x 5; deny and deny_listed ${RUNS_BETWEEN_DRAINS} x ${DRAINED_ROUNDS}, ring drained between rounds; deny_ring_full ${REPEAT} x 5 after ${RING_FILL_RUNS} denied runs filled the ring (records no longer written)`,
      },
      ns_per_packet_by_table_size: bySize,
    };
  }

  /** One iperf stream, then new connections (connect, a byte each way, close) for as long. */
  private async measureSetup(setup: Setup): Promise<{ gbps: number; connPerS: number }> {
    const measure = async () => ({
      gbps: (await measureIperf(this.net!, 'client', 'server', this.opts.seconds, PORT)).gbps,
      connPerS: (await measureConnRate(this.net!, 'client', 'server', this.opts.seconds, PORT)).perSecond,
    });
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

  /** Endpoints drop everything until their first policy sync; the client's is empty (allow all). */
  private async attach(policyEntries: number): Promise<void> {
    const dp = this.dp!;
    await dp.upsertEndpoint(endpointFor(this.net!.pod('client'), EP.client, ID.client));
    await dp.syncPolicy(EP.client, [], { ingress: false, egress: false });
    await dp.upsertEndpoint(endpointFor(this.net!.pod('server'), EP.server, ID.server));
    await dp.syncPolicy(EP.server, serverPolicy(policyEntries), SERVER_ENFORCEMENT);
  }

  /** A removed endpoint's programs stay and drop everything (fail closed), so they go as well. */
  private async detach(): Promise<void> {
    await this.dp!.removeEndpoint(EP.client);
    await this.dp!.removeEndpoint(EP.server);
    for (const pod of ['client', 'server']) tcHookDestroy(this.net!.pod(pod).hostIfindex);
  }

  /** The floor of each method: a tc program that only returns TC_ACT_OK. */
  private noopCosts(): NoopCosts {
    const obj = BpfObject.open(NOOP_OBJECT_PATH);
    try {
      obj.load();
      const prog = obj.program('cil_noop');
      try {
        const run: TestRunner = (data, repeat) => prog.testRun({ data, repeat });
        const frame = (sport: number): Buffer => tcpPacket({ src: '10.9.0.1', dst: '10.9.0.2', sport, dport: PORT, flags: TCP_SYN });
        return {
          single: expectVerdict('noop single', nsPerSingleRun('noop', run, (i) => frame(1024 + (i % 60_000)), SINGLE_RUNS), TC_ACT_OK),
          repeated: expectVerdict('noop repeated', nsPerPacket('noop', run, frame(40_000), REPEAT), TC_ACT_OK),
        };
      } finally {
        prog.close();
      }
    } finally {
      obj.close();
    }
  }

  /** The server's ingress program (cil_to_container), as the kernel runs it for delivered packets. */
  private runner(): TestRunner {
    const dp = this.dp!;
    return (data, repeat) => dp.testRun('to-container', data, repeat);
  }

  private packets(): { newFlow: (sport: number) => Buffer; established: Buffer; denied: Buffer; denyListed: Buffer } {
    const client = this.net!.pod('client').ip;
    const server = this.net!.pod('server').ip;
    return {
      newFlow: (sport) => tcpPacket({ src: client, dst: server, sport, dport: PORT, flags: TCP_SYN }),
      established: tcpPacket({ src: client, dst: server, sport: 65_535, dport: PORT, flags: TCP_ACK }),
      denied: tcpPacket({ src: syntheticIp(1), dst: server, sport: 40_000, dport: PORT, flags: TCP_SYN }),
      denyListed: tcpPacket({ src: syntheticIp(0), dst: server, sport: 40_000, dport: PORT, flags: TCP_SYN }),
    };
  }

  /** Opens the flow the established path is measured on (its SYN creates the conntrack entry). */
  private establish(): void {
    const client = this.net!.pod('client').ip;
    const server = this.net!.pod('server').ip;
    const r = this.runner()(tcpPacket({ src: client, dst: server, sport: 65_535, dport: PORT, flags: TCP_SYN }), 1);
    if (r.retval !== TC_ACT_OK) throw new Error(`per-packet: the SYN of the established flow returned ${r.retval}, not TC_ACT_OK`);
  }

  /**
   * Empties the event ring, runs `calibrate` once to learn how many records one run of the path
   * writes, and returns the check run between batches: the ring must hold exactly that many per
   * run, or records were lost to a full ring and the batch measured the ring-full path.
   */
  private ringCheck(what: string, calibrate: () => void): BatchHook {
    const dp = this.dp!;
    dp.drainEvents();
    calibrate();
    const perRun = dp.drainEvents().length;
    return (runs) => {
      const found = dp.drainEvents().length;
      if (found !== perRun * runs) {
        throw new Error(`per-packet ${what}: ${found} event records after ${runs} runs, expected ${perRun * runs}; the ring filled and the runs took the ring-full path`);
      }
    };
  }

  private singleRunCosts(): SingleRunCosts {
    const run = this.runner();
    const p = this.packets();
    const first = this.nextSport;
    this.nextSport += SINGLE_RUNS + 1;
    if (this.nextSport >= 65_535) throw new Error('per-packet: ran out of fresh source ports for new flows');
    const newCheck = this.ringCheck('allow_new', () => run(p.newFlow(first + SINGLE_RUNS), 1));
    const allowNew = nsPerSingleRun('allow_new', run, (i) => p.newFlow(first + i), SINGLE_RUNS, RUNS_BETWEEN_DRAINS, newCheck);
    this.establish();
    const estCheck = this.ringCheck('allow_established', () => run(p.established, 1));
    const established = nsPerSingleRun('allow_established', run, () => p.established, SINGLE_RUNS, RUNS_BETWEEN_DRAINS, estCheck);
    const denyCheck = this.ringCheck('deny', () => run(p.denied, 1));
    const deny = nsPerSingleRun('deny', run, () => p.denied, SINGLE_RUNS, RUNS_BETWEEN_DRAINS, denyCheck);
    return {
      allow_new: expectVerdict('allow_new', allowNew, TC_ACT_OK),
      allow_established: expectVerdict('allow_established', established, TC_ACT_OK),
      deny: expectVerdict('deny', deny, TC_ACT_SHOT),
    };
  }

  private repeatedCosts(): RepeatedCosts {
    const run = this.runner();
    const p = this.packets();
    this.establish();
    const established = nsPerPacket('allow_established', run, p.established, REPEAT, 5, this.ringCheck('allow_established', () => run(p.established, 1)));
    const deny = nsPerPacket('deny', run, p.denied, RUNS_BETWEEN_DRAINS, DRAINED_ROUNDS, this.ringCheck('deny', () => run(p.denied, 1)));
    const denyListed = nsPerPacket('deny_listed', run, p.denyListed, RUNS_BETWEEN_DRAINS, DRAINED_ROUNDS, this.ringCheck('deny_listed', () => run(p.denyListed, 1)));
    return {
      allow_established: expectVerdict('allow_established', established, TC_ACT_OK),
      deny: expectVerdict('deny', deny, TC_ACT_SHOT),
      deny_listed: expectVerdict('deny_listed', denyListed, TC_ACT_SHOT),
    };
  }

  /** Denied packets once the ring is full (nobody reading): what a flood costs without records. */
  private denyRingFullCost(): number {
    const dp = this.dp!;
    const run = this.runner();
    const { denied } = this.packets();
    dp.drainEvents();
    run(denied, RING_FILL_RUNS);
    const cost = nsPerPacket('deny_ring_full', run, denied, REPEAT);
    const kept = dp.drainEvents().length;
    if (kept >= 2 * RING_FILL_RUNS) throw new Error(`per-packet deny_ring_full: the ring kept all ${kept} records of ${RING_FILL_RUNS} fill runs; it never filled`);
    return expectVerdict('deny_ring_full', cost, TC_ACT_SHOT);
  }

  /**
   * Removes everything, collecting failures so one does not keep the rest in place. A signal and
   * the interrupted run's own `finally` both call it; they share the one cleanup.
   */
  cleanup(): Promise<void> {
    this.cleaning ??= this.removeAll();
    return this.cleaning;
  }

  private removeAll(): Promise<void> {
    return runCleanup('bench cleanup', [
      ['remove iptables chain', () => IptablesChain.remove()],
      ['remove cross-node bench', () => this.crossNode?.cleanup()],
      ['close datapath', () => this.dp?.close()],
      ['destroy pod network', () => this.net?.destroy()],
      ['remove pin dir', () => removePinDir(PIN_DIR)],
    ]);
  }
}

await benchMain('datapath benchmark', fileURLToPath(import.meta.url), () => parseOptions(process.argv.slice(2)), sweepLeftovers, (opts) => new Bench(opts));
