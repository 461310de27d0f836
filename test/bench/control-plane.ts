// `npm run bench:control-plane`: one agent (in this process, real datapath) against a dedicated
// kube-apiserver + etcd, driven to 1,000 endpoints on 200 label sets and 500 policies. Measures
// identity allocation, the time until all 500 policies are enforced on every endpoint, single
// policy update → enforcement latency, and the agent's RSS. Progress goes to stderr; the last
// stdout line is one JSON object. Everything it creates (control plane, veths, pins, state dir)
// is removed at the end, on SIGINT/SIGTERM, and at the start of the next run if a run was killed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentDaemon } from '../../controllers/agent/daemon.js';
import { CrdIdentityAllocator } from '../../controllers/agent/identity/crd-allocator.js';
import { LabelSet } from '../../controllers/agent/labels/labels.js';
import { resolvePolicy } from '../../controllers/agent/policy/resolve.js';
import { loadAgentConfig } from '../../controllers/config/agent.js';
import { newApiClient, type ApiClient } from '../../controllers/runtime/apiclient.js';
import { ciliumNetworkPolicies, ciliumNodes, collectionPath, namespaces, objectPath, pods } from '../../controllers/runtime/kinds.js';
import { newLogger } from '../../controllers/runtime/log.js';
import { apply } from '../../controllers/runtime/ssa.js';
import { BPFFS_ROOT } from '../../datapath/linux/paths.js';
import { removePinDir, type TestLink } from '../../datapath/linux/testing/fixtures.js';
import type { PolicyEntry } from '../../datapath/types.js';
import { startControlPlane, type RunningControlPlane } from '../../hack/controlplane/controlplane.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { pollUntil } from '../envtest/poll.js';
import { benchPod, benchPolicy, inPool, labelSetOf, p50p99, policyShape } from './control-plane-objects.js';
import { agentWork, startCpuProfile } from './control-plane-metrics.js';
import { createVeths, removeVeths } from './control-plane-veths.js';
import { benchMain, positiveIntFlag } from './main.js';

const VETH_PREFIX = 'ctcpb';
// Fixed (one bench runs at a time), so the next run or the exit-time sweep removes what a killed run left.
const PIN_DIR = path.join(BPFFS_ROOT, 'cilium-ts-bench-cp');
const NODE = 'bench-cp-node';
const NAMESPACE = 'bench-cp';
// A /20: 4,094 addresses, enough for 1,000 endpoints plus router and health.
const POD_CIDR = '10.220.0.0/20';
const UPDATES = 50;
const FIELD_MANAGER = 'bench-control-plane';
const CONVERGE_TIMEOUT_MS = 300_000;
const UPDATE_TIMEOUT_MS = 30_000;
const CONVERGE_POLL_MS = 200;
const MIB = 1024 * 1024;

interface Options {
  endpoints: number;
  labelSets: number;
  policies: number;
  concurrency: number;
  /** Where to write a CPU profile of the policy phases, if anywhere. */
  cpuProfile?: string;
}

function parseOptions(argv: string[]): Options | 'cleanup' {
  if (argv.includes('--cleanup')) return 'cleanup';
  const value = (flag: string, fallback: number): number => positiveIntFlag(argv, flag, fallback);
  const profileAt = argv.indexOf('--cpu-profile');
  const cpuProfile = profileAt < 0 ? undefined : argv[profileAt + 1];
  if (profileAt >= 0 && (cpuProfile === undefined || cpuProfile.startsWith('--'))) throw new Error('--cpu-profile needs a file name');
  const opts = { cpuProfile, endpoints: value('--endpoints', 1_000), labelSets: value('--label-sets', 200), policies: value('--policies', 500), concurrency: value('--concurrency', 8) };
  if (opts.labelSets > opts.endpoints) throw new Error(`--label-sets ${opts.labelSets}: more than --endpoints ${opts.endpoints}; some label sets would have no pod`);
  if (opts.policies < UPDATES * 5) throw new Error(`--policies ${opts.policies}: at least ${UPDATES * 5} needed for ${UPDATES} updates of distinct L4 policies`);
  return opts;
}

function progress(message: string): void {
  console.error(`[bench:control-plane] ${new Date().toISOString().slice(11, 19)} ${message}`);
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** Comparable form of a policy map's contents, independent of order. */
function entriesKey(entries: readonly PolicyEntry[]): string {
  return entries
    .map((e) => `${e.direction}/${e.identity}/${e.protocol}/${e.port}/${e.deny}`)
    .sort()
    .join(',');
}

/** Peak RSS of this process, sampled, from a baseline taken before the agent opens. */
class RssSampler {
  readonly baseline = process.memoryUsage.rss();
  peak = this.baseline;
  private readonly timer = setInterval(() => this.sample(), 200);

  sample(): number {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
    return rss;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Times each allocation that created an identity. The daemon builds its allocator privately, so
 * the bench wraps the class's allocate for its own process; the agent's behaviour is unchanged.
 */
function timeIdentityCreations(samples: number[]): () => void {
  const proto = CrdIdentityAllocator.prototype;
  const original = Object.getOwnPropertyDescriptor(proto, 'allocate')?.value as CrdIdentityAllocator['allocate'];
  proto.allocate = async function (this: CrdIdentityAllocator, labels) {
    const started = performance.now();
    const result = await original.call(this, labels);
    if (result.created) samples.push(performance.now() - started);
    return result;
  };
  return () => {
    proto.allocate = original;
  };
}

class Bench {
  private cp?: RunningControlPlane;
  private stateDir?: string;
  private daemon?: AgentDaemon;
  private daemonDone?: Promise<void>;
  private rss?: RssSampler;
  private cleaning?: Promise<void>;
  private readonly identitySamples: number[] = [];
  private readonly phases: Record<string, number> = {};
  /** Apply call → its answer handled here; the answer queues behind the agent's work on this thread. */
  private readonly applyAnswerMs: number[] = [];

  constructor(private readonly opts: Options) {}

  private async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    progress(`${name}...`);
    const result = await work();
    this.phases[name] = seconds(performance.now() - started);
    progress(`${name}: ${this.phases[name]} s (rss ${(process.memoryUsage.rss() / MIB).toFixed(0)} MiB)`);
    return result;
  }

  async run(): Promise<Record<string, unknown>> {
    const { endpoints: count, labelSets } = this.opts;
    await sweepLeftovers();
    const cp = await this.phase('control_plane_start', () => startControlPlane({ detached: false }));
    this.cp = cp;
    const client = newApiClient(cp.kubeConfig);
    const links = await this.phase('veths_create', () => createVeths(VETH_PREFIX, count));
    this.stateDir = await mkdtemp(path.join(tmpdir(), 'cilium-ts-bench-cp-'));
    await client.request('POST', collectionPath(namespaces), { body: { metadata: { name: NAMESPACE } } });

    const restoreAllocate = timeIdentityCreations(this.identitySamples);
    this.rss = new RssSampler();
    const daemon = await this.phase('agent_start', () => this.startAgent(cp.kubeconfigPath, client));

    await this.phase('pods_create', () =>
      inPool(
        Array.from({ length: count }, (_, i) => i),
        16,
        (i) => client.request('POST', collectionPath(pods, NAMESPACE), { body: benchPod(i, labelSets, NAMESPACE, NODE) }),
      ),
    );
    const endpointIds: number[] = [];
    const createMs: number[] = [];
    await this.phase('endpoints_create', () => this.createEndpoints(daemon, links, endpointIds, createMs));
    restoreAllocate();
    if (this.identitySamples.length !== labelSets) {
      throw new Error(`identities: ${this.identitySamples.length} allocations created an identity, expected one per label set (${labelSets})`);
    }

    const work: Record<string, unknown> = {};
    const measured = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
      const counting = await agentWork(daemon.registry);
      const result = await this.phase(name, run);
      work[name] = await counting.finish();
      return result;
    };
    const stopProfile = this.opts.cpuProfile === undefined ? undefined : await startCpuProfile(this.opts.cpuProfile);
    const convergeMs = await measured('policies_converge', () => this.applyAll(daemon, client));
    const updateMs = await measured('policy_updates', () => this.updates(daemon, client, endpointIds));
    await stopProfile?.();
    this.rss.sample();
    this.rss.stop();

    return {
      endpoints: daemon.endpoints.list().length,
      identities: this.identitySamples.length,
      policies: this.policyCount(daemon),
      converge_s: seconds(convergeMs),
      policy_apply_to_enforced_ms: p50p99(updateMs),
      policy_apply_answer_ms: p50p99(this.applyAnswerMs),
      identity_alloc_ms: p50p99(this.identitySamples),
      agent_rss_mib: Math.round((this.rss.peak - this.rss.baseline) / MIB),
      endpoint_create_ms: p50p99(createMs),
      phases_s: this.phases,
      agent_work: work,
      notes:
        'agent runs in-process with the driver: agent_rss_mib = peak process RSS minus RSS before the agent opened ' +
        `(baseline ${Math.round(this.rss.baseline / MIB)} MiB); converge_s = first policy apply until every endpoint's policy map ` +
        'equals resolvePolicy over the repository holding all policies; apply_to_enforced = apply call until every selected endpoint enforces the new port ' +
        `(p99 of ${UPDATES} samples is their maximum); apply_answer = apply call until this process handled the apiserver's answer, ` +
        "which waits behind the agent's work on the shared event loop",
    };
  }

  /** The bench's policies the agent's repository holds. */
  private policyCount(daemon: AgentDaemon): number {
    let held = 0;
    for (let j = 0; j < this.opts.policies; j++) {
      if (daemon.policy.repo.get({ kind: 'CiliumNetworkPolicy', namespace: NAMESPACE, name: `policy-${j}` }) !== undefined) held++;
    }
    return held;
  }

  private async startAgent(kubeconfigPath: string, client: ApiClient): Promise<AgentDaemon> {
    const config = loadAgentConfig(
      [
        '--node-name', NODE,
        '--k8s-kubeconfig-path', kubeconfigPath,
        '--bpf-pin-dir', PIN_DIR,
        '--state-dir', this.stateDir as string,
        '--agent-health-port', '0',
        '--prometheus-serve-addr', '',
      ],
      {},
    );
    const daemon = await AgentDaemon.open({ config, logger: newLogger('cilium-agent', process.env.CILIUM_TS_LOG_LEVEL ?? 'warn'), nodeIP: '198.18.9.1' });
    this.daemon = daemon;
    this.daemonDone = daemon.start();
    // A failed start must not leave the bench waiting for the node until its deadline.
    let failed: Error | undefined;
    this.daemonDone.catch((err: Error) => (failed = err));
    await pollUntil('the agent restored its endpoints', () => failed !== undefined || daemon.restoreReport !== undefined, 60_000);
    await pollUntil('the agent registered its CiliumNode', () => failed !== undefined || daemon.node.resource.store.has(NODE), 30_000);
    if (failed) throw failed;
    // The operator's part, done here: the node's podCIDR.
    await client.request('PATCH', objectPath(ciliumNodes, NODE), { body: { spec: { ipam: { podCIDRs: [POD_CIDR] } } }, contentType: 'application/merge-patch+json' });
    await daemon.node.waitForPodCIDR(AbortSignal.timeout(30_000));
    return daemon;
  }

  private async createEndpoints(daemon: AgentDaemon, links: TestLink[], ids: number[], createMs: number[]): Promise<void> {
    const created = { n: 0 };
    await inPool(links, this.opts.concurrency, async (link, i) => {
      const body = {
        'container-id': `bench-cp-${i}`,
        'container-interface-name': 'eth0',
        'interface-name': link.ifname,
        'interface-index': link.ifindex,
        mac: '02:00:00:00:00:01',
        'host-mac': link.mac,
        'k8s-namespace': NAMESPACE,
        'k8s-pod-name': `pod-${i}`,
        state: 'waiting-for-identity',
      };
      const started = performance.now();
      // The IPAM binds to the pool a moment after the podCIDR arrives.
      let ep;
      for (let tries = 1; ; tries++) {
        try {
          ep = await daemon.endpoints.create(body);
          break;
        } catch (err) {
          if (tries >= 50 || !/no podCIDR yet/.test((err as Error).message)) throw err;
          await sleep(100);
        }
      }
      createMs.push(performance.now() - started);
      ids[i] = ep.id;
      if (++created.n % 100 === 0) progress(`  ${created.n} endpoints`);
    });
  }

  /**
   * Every endpoint's policy map equals what resolvePolicy computes from the repository, which
   * holds all the bench's policies. Endpoints of one identity share one computation.
   */
  private converged(daemon: AgentDaemon): { done: boolean; behind: number } {
    const repo = daemon.policy.repo;
    if (this.policyCount(daemon) < this.opts.policies) return { done: false, behind: -1 };
    const expected = new Map<number, string>();
    let behind = 0;
    for (const ep of daemon.endpoints.list()) {
      let want = expected.get(ep.identity);
      if (want === undefined) {
        want = entriesKey(resolvePolicy(repo, { identity: ep.identity, labels: LabelSet.parse(ep.identityLabels), namedPorts: [] }).entries);
        expected.set(ep.identity, want);
      }
      const realized = daemon.datapath.endpointPolicy(ep.id).realized;
      if (realized === undefined || entriesKey(realized.entries) !== want) behind++;
    }
    return { done: behind === 0, behind };
  }

  private async applyAll(daemon: AgentDaemon, client: ApiClient): Promise<number> {
    const { policies, labelSets } = this.opts;
    const started = performance.now();
    await inPool(
      Array.from({ length: policies }, (_, j) => j),
      8,
      (j) => apply(client, ciliumNetworkPolicies, benchPolicy(j, labelSets, NAMESPACE), { fieldManager: FIELD_MANAGER, force: true }),
    );
    progress(`  ${policies} policies applied in ${seconds(performance.now() - started)} s; waiting for enforcement`);
    let last = performance.now();
    let checking = 0;
    for (;;) {
      const checkStarted = performance.now();
      const state = this.converged(daemon);
      checking += performance.now() - checkStarted;
      this.phases.converge_checks = seconds(checking);
      if (state.done) return performance.now() - started;
      if (performance.now() - started > CONVERGE_TIMEOUT_MS) throw new Error(`policies not converged after ${CONVERGE_TIMEOUT_MS / 1000} s: ${state.behind} endpoints behind`);
      if (performance.now() - last > 5_000) {
        last = performance.now();
        progress(`  ${state.behind < 0 ? `repository holds ${this.policyCount(daemon)} policies` : `${state.behind} endpoints behind`}`);
      }
      // The check shares the agent's thread: polled sparingly so it takes little from what it measures.
      await sleep(CONVERGE_POLL_MS);
    }
  }

  /** Moves the port of UPDATES distinct L4 policies, one at a time, timing each to enforcement. */
  private async updates(daemon: AgentDaemon, client: ApiClient, endpointIds: number[]): Promise<number[]> {
    const { policies, labelSets, endpoints } = this.opts;
    const l4 = Array.from({ length: policies }, (_, j) => j).filter((j) => policyShape(j) === 'l4').slice(0, UPDATES);
    const samples: number[] = [];
    for (const [i, j] of l4.entries()) {
      const port = 20_000 + i;
      const selected = endpointIds.filter((_, k) => labelSetOf(k, labelSets) === labelSetOf(j, labelSets));
      if (selected.length === 0 || selected.length > endpoints) throw new Error(`policy-${j}: selects no endpoint`);
      const enforced = () => selected.every((id) => daemon.datapath.endpointPolicy(id).realized?.entries.some((e) => e.direction === 'ingress' && e.port === port) === true);
      const started = performance.now();
      await apply(client, ciliumNetworkPolicies, benchPolicy(j, labelSets, NAMESPACE, port), { fieldManager: FIELD_MANAGER, force: true });
      this.applyAnswerMs.push(performance.now() - started);
      while (!enforced()) {
        if (performance.now() - started > UPDATE_TIMEOUT_MS) throw new Error(`policy-${j} update ${i}: port ${port} not enforced on its ${selected.length} endpoints within ${UPDATE_TIMEOUT_MS} ms`);
        await sleep(1);
      }
      samples.push(performance.now() - started);
    }
    return samples;
  }

  /** Removes everything; a signal and the run's own `finally` share the one cleanup. */
  cleanup(): Promise<void> {
    this.cleaning ??= runCleanup('bench:control-plane cleanup', [
      ['stop rss sampler', () => this.rss?.stop()],
      [
        'stop agent',
        async () => {
          this.daemon?.stop();
          await this.daemonDone?.catch((err: unknown) => progress(`agent ended with: ${String(err)}`));
        },
      ],
      ['stop control plane', () => this.cp?.stop()],
      ['remove veths', () => removeVeths(VETH_PREFIX)],
      ['remove pin dir', () => removePinDir(PIN_DIR)],
      ['remove state dir', () => (this.stateDir === undefined ? undefined : rm(this.stateDir, { recursive: true, force: true }))],
    ]);
    return this.cleaning;
  }
}

/** What a killed run may have left: veths and the pin dir (its control plane died with it). */
async function sweepLeftovers(): Promise<void> {
  const removed = await removeVeths(VETH_PREFIX);
  if (removed > 0) progress(`removed ${removed} veths left by an earlier run`);
  removePinDir(PIN_DIR);
}

await benchMain('control-plane benchmark', fileURLToPath(import.meta.url), () => parseOptions(process.argv.slice(2)), sweepLeftovers, (opts) => new Bench(opts));
