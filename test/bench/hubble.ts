// `npm run bench:hubble`: Hubble's observer on the real datapath. Progress goes to stderr; the last
// stdout line is one JSON object:
// - flows_per_s_per_core: records the kernel wrote (prog test runs of denied and allowed SYNs on a
//   real pod's to-container program, captured raw from cilium_events), replayed through decode +
//   enrich + ring + history (encode, deflate, write) per CPU-second of this process (all threads);
// - observe_latency_ms: a denied SYN run in the kernel -> its line printed by the upstream
//   `hubble observe -f` reading our server's unix socket (p50, p99);
// - history_bytes_per_flow and history_query_ms: flows generated through the history writer
//   (--history-flows, default 10M, spread over hours), then a GetFlows since/until of one minute
//   with filters over gRPC, timed to its last flow.
// Everything it creates (netns, links, pins, temp dirs, the CLI process) is removed at the end,
// on SIGINT/SIGTERM, and at the start of the next run if a run was killed outright.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { credentials, type Client } from '@grpc/grpc-js';
import { HubbleObserver } from '../../controllers/agent/hubble/observer.js';
import { idleEvents } from '../../controllers/agent/hubble/testing.js';
import type { LocalEndpointInfo, ObserverSources } from '../../controllers/agent/hubble/enrich.js';
import { flowContext } from '../../controllers/agent/hubble/enrich.js';
import { FlowIds } from '../../controllers/agent/hubble/flow-ids.js';
import { FlowHistory } from '../../controllers/agent/hubble/history/store.js';
import type { HubbleSettings } from '../../controllers/agent/hubble/options.js';
import { readFlowsWithHistory } from '../../controllers/agent/hubble/flows-reader.js';
import { eventToFlow } from '../../controllers/hubble/decode.js';
import { compileFilters } from '../../controllers/hubble/filter.js';
import type { FlowFilter } from '../../controllers/hubble/flow-types.js';
import { hubbleProtos } from '../../controllers/hubble/protos.js';
import { newLogger } from '../../controllers/runtime/log.js';
import { BpfMap } from '../../datapath/libbpf/map.js';
import { RingBuffer } from '../../datapath/libbpf/ringbuf.js';
import type { LinuxDatapath } from '../../datapath/linux/linux-datapath.js';
import { BPFFS_ROOT } from '../../datapath/linux/paths.js';
import { removePinDir } from '../../datapath/linux/testing/fixtures.js';
import { TCP_SYN, tcpPacket } from '../../datapath/linux/testing/packets.js';
import { decodeEvent } from '../../datapath/maps/events.js';
import { IPPROTO_TCP } from '../../datapath/maps/protocols.js';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import type { DatapathEvent } from '../../datapath/types.js';
import { defaultBinDir } from '../../hack/controlplane/paths.js';
import { killChild } from '../datapath/children.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { endpointFor, openDatapath } from '../datapath/harness.js';
import { benchMain, positiveIntFlag } from './main.js';
import { median } from './per-packet.js';

const PREFIX = 'cthubble';
const PIN_DIR = path.join(BPFFS_ROOT, 'cilium-ts-bench-hubble');
const WORK_DIR = path.join(tmpdir(), 'cilium-ts-bench-hubble');
const HUBBLE = path.join(defaultBinDir(), 'hubble-upstream');
const EP = { client: 1, server: 2 } as const;
const ID = { client: 50001, server: 50002 } as const;
const ALLOWED_PORT = 8080;
const DENIED_PORT = 9090;
const COOKIE = 7;
const POLICY = { kind: 'CiliumNetworkPolicy', namespace: 'bench', name: 'server-ingress', labels: [], revision: '1' };
// Distinct recorded flows (each a test run, so a few kernel records); the replay cycles through them.
const RECORDED_RUNS = 4000;
// Records the pump hands over per poll at high rates; the replay yields to the event loop as often.
const REPLAY_BATCH = 4096;
const TC_ACT_SHOT = 2;
const HISTORY_SPACING_MS = 1;
const QUERY_WINDOW_MS = 60_000;
const GEN_PODS = 200;
const GEN_NAMESPACES = 20;
// A namespace the generated drops reach (destinations of every fifth flow: namespaces 0, 5, 10, 15).
const QUERY_NAMESPACE = 5;
const QUERY_RUNS = 3;

interface Options {
  flows: number;
  historyFlows: number;
  latencySamples: number;
}

function parseOptions(argv: string[]): Options | 'cleanup' {
  if (argv.includes('--cleanup')) return 'cleanup';
  return {
    flows: positiveIntFlag(argv, '--flows', 500_000),
    historyFlows: positiveIntFlag(argv, '--history-flows', 10_000_000),
    latencySamples: positiveIntFlag(argv, '--latency-samples', 200),
  };
}

function progress(message: string): void {
  console.error(`[bench:hubble] ${message}`);
}

async function sweepLeftovers(): Promise<void> {
  await runCleanup('bench sweep', [
    ['remove pod network', () => PodNetwork.sweep(PREFIX)],
    ['remove pin dir', () => removePinDir(PIN_DIR)],
    ['remove work dir', () => rmSync(WORK_DIR, { recursive: true, force: true })],
  ]);
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

function settings(dir: string, over: Partial<HubbleSettings> = {}): HubbleSettings {
  return {
    enabled: true,
    socketPath: path.join(dir, 'hubble.sock'),
    listenAddress: '',
    capacity: 4095,
    queueSize: 16384,
    metricsServer: '',
    metrics: '',
    history: { dir: path.join(dir, 'history'), maxBytes: 1 << 30, maxAgeMs: 0 },
    ...over,
  };
}

function podInfo(id: number, identity: number, ip: string, name: string, ns: string, ifindex: number, ifname: string): LocalEndpointInfo {
  return {
    id,
    ipv4: ip,
    identity,
    labels: [`k8s:io.kubernetes.pod.namespace=${ns}`, `k8s:app=${name}`, 'k8s:io.cilium.k8s.policy.cluster=default'],
    namespace: ns,
    podName: `${name}-5c4b9-xk2p`,
    ifindex,
    ifname,
    pod: { generateName: `${name}-5c4b9-`, labels: { app: name, 'pod-template-hash': '5c4b9' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-5c4b9`, uid: name, controller: true }] },
  };
}

/** The agent's caches as the observer reads them, over a fixed set of local endpoints. */
function sourcesOf(endpoints: readonly LocalEndpointInfo[]): ObserverSources {
  const byIp = new Map(endpoints.map((e) => [e.ipv4, e]));
  const byId = new Map(endpoints.map((e) => [e.id, e]));
  const byIdentity = new Map(endpoints.map((e) => [e.identity, e.labels]));
  return {
    nodeName: 'bench-node',
    clusterName: 'default',
    localEndpointByIp: (ip) => byIp.get(ip),
    localEndpointById: (id) => byId.get(id),
    identityLabels: (id) => byIdentity.get(id),
    remoteEndpoint: () => undefined,
    // One object per rule, as the agent's sources keep them.
    policyOfCookie: (cookie) => (cookie === COOKIE ? POLICY : undefined),
  };
}

interface Replay {
  flows: number;
  flowsPerCpuSecond: number;
  cpuUsPerFlow: number;
  wallSeconds: number;
  historyLostFlows?: number;
  historyBytesPerFlow?: number;
}

class Bench {
  private net?: PodNetwork;
  private dp?: LinuxDatapath;
  private cli?: ReturnType<typeof spawn>;
  private readonly stops: AbortController[] = [];
  private readonly running: Promise<unknown>[] = [];
  private cleaning?: Promise<void>;
  private sport = 1024;

  constructor(private readonly opts: Options) {}

  async run(): Promise<Record<string, unknown>> {
    if (!existsSync(HUBBLE)) throw new Error(`${HUBBLE} is missing: build it with \`bash hack/install-tools.sh all\``);
    await sweepLeftovers();
    mkdirSync(WORK_DIR, { recursive: true });
    this.net = await PodNetwork.create({ prefix: PREFIX, pods: ['client', 'server'] });
    this.dp = await openDatapath(PIN_DIR);
    const client = this.net.pod('client');
    const server = this.net.pod('server');
    await this.dp.syncIPCache('endpoint', [
      { prefix: `${client.ip}/32`, identity: ID.client },
      { prefix: `${server.ip}/32`, identity: ID.server },
    ]);
    await this.dp.upsertEndpoint(endpointFor(client, EP.client, ID.client));
    await this.dp.syncPolicy(EP.client, [], { ingress: false, egress: false });
    await this.dp.upsertEndpoint(endpointFor(server, EP.server, ID.server));
    await this.dp.syncPolicy(EP.server, [{ identity: ID.client, direction: 'ingress', protocol: IPPROTO_TCP, port: ALLOWED_PORT, deny: false, cookie: COOKIE }], { ingress: true, egress: false });
    const sources = sourcesOf([podInfo(EP.client, ID.client, client.ip, 'client', 'bench', client.hostIfindex, client.hostIfname), podInfo(EP.server, ID.server, server.ip, 'server', 'bench', server.hostIfindex, server.hostIfname)]);

    progress(`pods ${client.ip} -> ${server.ip}; recording kernel events`);
    const throughput = await this.throughput(sources);
    const latency = await this.latency(sources);
    const history = await this.history();
    return {
      flows_per_s_per_core: throughput.flowsPerCpuSecond,
      observe_latency_ms: { p50: latency.p50, p99: latency.p99 },
      history_bytes_per_flow: history.bytesPerFlow,
      history_query_ms: history.queryMs,
      details: { throughput, latency, history },
    };
  }

  private syn(sport: number, dport: number): Buffer {
    return tcpPacket({ src: this.net!.pod('client').ip, dst: this.net!.pod('server').ip, sport, dport, flags: TCP_SYN });
  }

  /** Raw records the kernel writes for allowed (new flow) and denied SYNs, read off cilium_events. */
  private record(): Buffer[] {
    const dp = this.dp!;
    dp.drainEvents();
    const records: Buffer[] = [];
    const map = BpfMap.openPinned(path.join(PIN_DIR, 'cilium_events'));
    // The record views the ring's memory (koffi.view): copy it before the ring is unmapped.
    const ring = new RingBuffer(map, (r) => records.push(Buffer.from(r)));
    try {
      for (let i = 0; i < RECORDED_RUNS; i++) {
        dp.testRun('to-container', this.syn(this.sport++, i % 3 === 0 ? DENIED_PORT : ALLOWED_PORT));
        if (i % 1000 === 999) ring.consume();
      }
      ring.consume();
    } finally {
      ring.close();
      map.close();
    }
    return records;
  }

  private async throughput(sources: ObserverSources): Promise<Replay & { cpuUsPerFlowWithoutHistory: number }> {
    const records = this.record();
    const kinds = new Map<string, number>();
    for (const r of records) {
      const type = decodeEvent(r).type;
      kinds.set(type, (kinds.get(type) ?? 0) + 1);
    }
    progress(`recorded ${records.length} kernel records of ${RECORDED_RUNS} runs (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}); replaying ${this.opts.flows}`);
    // The same replay without the history says what the history costs.
    const withoutHistory = await this.replay(records, sources, false);
    const all = await this.replay(records, sources, true);
    return { ...all, cpuUsPerFlowWithoutHistory: withoutHistory.cpuUsPerFlow };
  }

  private async replay(records: readonly Buffer[], sources: ObserverSources, history: boolean): Promise<Replay> {
    const dir = path.join(WORK_DIR, 'throughput');
    const observer = new HubbleObserver({ settings: settings(dir, history ? {} : { history: undefined }), sources, events: idleEvents, nodeAddress: '127.0.0.1', version: 'bench', logger: newLogger('bench-hubble', 'warn') });
    await observer.history?.open();
    try {
      const cpu = process.cpuUsage();
      const wall = performance.now();
      for (let done = 0; done < this.opts.flows; ) {
        const end = Math.min(this.opts.flows, done + REPLAY_BATCH);
        for (; done < end; done++) observer.ingest(decodeEvent(records[done % records.length]!));
        await yieldToLoop();
      }
      await observer.history?.flush();
      const used = process.cpuUsage(cpu);
      const cpuSeconds = (used.user + used.system) / 1e6;
      const stats = observer.history?.stats();
      return {
        flows: this.opts.flows,
        flowsPerCpuSecond: Math.round(this.opts.flows / cpuSeconds),
        cpuUsPerFlow: round((cpuSeconds * 1e6) / this.opts.flows, 2),
        wallSeconds: round((performance.now() - wall) / 1000, 2),
        ...(stats ? { historyLostFlows: stats.lostFlows, historyBytesPerFlow: round(stats.bytes / Math.max(1, stats.flows), 2) } : {}),
      };
    } finally {
      await observer.history?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private async latency(sources: ObserverSources): Promise<{ p50: number; p99: number; samples: number; median: number }> {
    const dp = this.dp!;
    dp.drainEvents();
    const dir = path.join(WORK_DIR, 'latency');
    const s = settings(dir);
    const observer = new HubbleObserver({ settings: s, sources, events: (sig, lost, max) => dp.events(sig, lost, max), nodeAddress: '127.0.0.1', version: 'bench', logger: newLogger('bench-hubble', 'warn') });
    const stop = new AbortController();
    this.stops.push(stop);
    this.running.push(observer.run(stop.signal));
    while (!existsSync(s.socketPath)) await sleep(20);
    const cli = spawn(HUBBLE, ['observe', '-f', '--server', `unix://${s.socketPath}`, '-o', 'json', '--to-port', String(DENIED_PORT), '--type', 'drop'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.cli = cli;
    const printed = new Map<number, number>();
    createInterface({ input: cli.stdout }).on('line', (line) => {
      const at = performance.timeOrigin + performance.now();
      const sport = (JSON.parse(line) as { flow?: { l4?: { TCP?: { source_port?: number } } } }).flow?.l4?.TCP?.source_port;
      if (sport !== undefined && !printed.has(sport)) printed.set(sport, at);
    });
    // The follower is connected once a first flow reaches it.
    const probe = this.sport++;
    const deadline = Date.now() + 10_000;
    while (!printed.has(probe)) {
      dp.testRun('to-container', this.syn(probe, DENIED_PORT));
      if (Date.now() > deadline) throw new Error('hubble observe -f printed no flow within 10 s');
      await sleep(200);
    }
    const sent = new Map<number, number>();
    for (let i = 0; i < this.opts.latencySamples; i++) {
      const sport = this.sport++;
      sent.set(sport, performance.timeOrigin + performance.now());
      const r = dp.testRun('to-container', this.syn(sport, DENIED_PORT));
      if (r.retval !== TC_ACT_SHOT) throw new Error(`latency: the denied SYN returned ${r.retval}, not TC_ACT_SHOT`);
      // Irregular spacing, so runs do not line up with the event pump's poll interval.
      await sleep(20 + Math.random() * 60);
    }
    const until = Date.now() + 5000;
    while ([...sent.keys()].some((p) => !printed.has(p)) && Date.now() < until) await sleep(50);
    const latencies = [...sent].flatMap(([port, at]) => (printed.has(port) ? [printed.get(port)! - at] : []));
    if (latencies.length < sent.size) throw new Error(`latency: ${sent.size - latencies.length} of ${sent.size} flows never printed by hubble observe -f`);
    await killChild(cli);
    stop.abort();
    return { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)), median: round(median(latencies)), samples: latencies.length };
  }

  // Flows of a busy node: GEN_PODS pods in GEN_NAMESPACES namespaces talking to each other.
  private generated(): { sources: ObserverSources; event: (i: number) => DatapathEvent } {
    const pods = Array.from({ length: GEN_PODS }, (_, i) => podInfo(100 + i, 60000 + i, `10.7.${i >> 8}.${i & 255}`, `app${i % 37}`, `ns-${i % GEN_NAMESPACES}`, 1000 + i, `lxc${i}`));
    const event = (i: number): DatapathEvent => {
      const src = pods[(i * 7) % GEN_PODS]!;
      const dst = pods[(i * 13 + 5) % GEN_PODS]!;
      const packet = { srcIp: src.ipv4, dstIp: dst.ipv4, protocol: IPPROTO_TCP, srcPort: 32768 + ((i * 7919) % 28000), dstPort: 8000 + (i % 5), flags: i % 4 === 0 ? 0x02 : 0x10 };
      const endpointId = dst.id;
      const srcIdentity = src.identity;
      const dstIdentity = dst.identity;
      // Literals, not a spread of shared fields: generating 10M events is most of this phase's time otherwise.
      switch (i % 5) {
        case 0:
          return { type: 'drop', endpointId, srcIdentity, dstIdentity, packet, reason: 133, direction: 'ingress', cookie: 0 };
        case 1:
          return { type: 'policy-verdict', endpointId, srcIdentity, dstIdentity, packet, direction: 'ingress', verdict: 0, matchType: 2, cookie: COOKIE };
        default:
          return { type: 'trace', endpointId, srcIdentity, dstIdentity, packet, observationPoint: 0, ctState: i % 4 === 0 ? 1 : 2 };
      }
    };
    return { sources: sourcesOf(pods), event };
  }

  private async history(): Promise<{ flows: number; bytesPerFlow: number; generateSeconds: number; queryMs: number; queryCpuMs: number; readMs: number; matched: number; lostFlows: number }> {
    const dir = path.join(WORK_DIR, 'history');
    const count = this.opts.historyFlows;
    const { sources, event } = this.generated();
    const ctx = flowContext(sources);
    const ids = new FlowIds();
    const start = Date.now() - count * HISTORY_SPACING_MS - 60_000;
    const writer = new FlowHistory({ dir: path.join(dir, 'history'), maxBytes: 1 << 30, maxAgeMs: 0, logger: newLogger('bench-hubble', 'warn') });
    await writer.open();
    const began = performance.now();
    const blockFlows = 8192;
    for (let i = 0; i < count; i++) {
      writer.append(eventToFlow(event(i), { timeMs: start + i * HISTORY_SPACING_MS, uuid: ids.take() }, ctx));
      if (i % (blockFlows * 4) === blockFlows * 4 - 1) await writer.flush();
      if (i % 1_000_000 === 999_999) progress(`history: ${i + 1} flows written`);
    }
    await writer.close();
    const generateSeconds = round((performance.now() - began) / 1000);
    const stats = writer.stats();
    progress(`history: ${stats.flows} flows in ${stats.bytes} bytes, ${stats.segments} segments, ${generateSeconds} s`);

    const s = settings(dir);
    const observer = new HubbleObserver({ settings: s, sources, events: idleEvents, nodeAddress: '127.0.0.1', version: 'bench', logger: newLogger('bench-hubble', 'warn') });
    const stop = new AbortController();
    this.stops.push(stop);
    this.running.push(observer.run(stop.signal));
    while (!existsSync(s.socketPath)) await sleep(20);
    const client = new (hubbleProtos().ObserverClient)(`unix://${s.socketPath}`, credentials.createInsecure());
    try {
      // Whole seconds, so the wire's Timestamp and the in-process query bound the same window.
      const sinceMs = Math.floor((start + (count * HISTORY_SPACING_MS) / 2) / 1000) * 1000;
      const req = {
        since: { seconds: String(sinceMs / 1000), nanos: 0 },
        until: { seconds: String((sinceMs + QUERY_WINDOW_MS) / 1000), nanos: 0 },
        whitelist: [{ verdict: ['DROPPED'], destination_pod: [`ns-${QUERY_NAMESPACE}/`] }],
      };
      // The channel connects before the clock starts; the median of a few runs is reported.
      await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
      const runs: number[] = [];
      const cpuRuns: number[] = [];
      let matched = 0;
      for (let i = 0; i < QUERY_RUNS; i++) {
        const t0 = performance.now();
        const cpu = process.cpuUsage();
        matched = await getFlowsCount(client, req);
        runs.push(performance.now() - t0);
        const used = process.cpuUsage(cpu);
        cpuRuns.push((used.user + used.system) / 1000);
      }
      // Server and client share this process: its CPU time is what the query cost, load or not.
      const queryMs = round(median(runs));
      const queryCpuMs = round(median(cpuRuns));
      // The history's share: the same selection read in-process, without gRPC's encoding and decoding.
      const t0 = performance.now();
      const query = { number: 0, first: false, follow: false, sinceMs, untilMs: sinceMs + QUERY_WINDOW_MS, matches: compileFilters(req.whitelist as Partial<FlowFilter>[], []) };
      let read = 0;
      for await (const ev of readFlowsWithHistory(observer.ring, observer.history, query, stop.signal)) if (ev.flow) read++;
      const readMs = round(performance.now() - t0);
      if (read !== matched) throw new Error(`history query: ${matched} flows over gRPC, ${read} read in-process`);
      progress(`history query: ${matched} flows of a ${QUERY_WINDOW_MS / 1000} s window in ${queryMs} ms (${queryCpuMs} ms CPU; ${readMs} ms of it reading the history)`);
      return { flows: stats.flows, bytesPerFlow: round(stats.bytes / stats.flows, 2), generateSeconds, queryMs, queryCpuMs, readMs, matched, lostFlows: stats.lostFlows };
    } finally {
      client.close();
      stop.abort();
    }
  }

  cleanup(): Promise<void> {
    this.cleaning ??= this.removeAll();
    return this.cleaning;
  }

  private removeAll(): Promise<void> {
    return runCleanup('bench cleanup', [
      ['stop hubble observe', () => this.cli && killChild(this.cli)],
      ['stop observers', async () => {
        for (const s of this.stops) s.abort();
        await Promise.allSettled(this.running);
      }],
      ['close datapath', () => this.dp?.close()],
      ['destroy pod network', () => this.net?.destroy()],
      ['remove pin dir', () => removePinDir(PIN_DIR)],
      ['remove work dir', () => rmSync(WORK_DIR, { recursive: true, force: true })],
    ]);
  }
}

function getFlowsCount(client: Client, req: object): Promise<number> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as Record<string, (r: object) => NodeJS.EventEmitter>).GetFlows!(req);
    let n = 0;
    call.on('data', (m: { flow?: unknown }) => {
      if (m.flow) n++;
    });
    call.on('end', () => resolve(n));
    call.on('error', reject);
  });
}

await benchMain('hubble benchmark', fileURLToPath(import.meta.url), () => parseOptions(process.argv.slice(2)), sweepLeftovers, (opts) => new Bench(opts));
