// A two-node cluster in the test process, for the end-to-end tests: the shared envtest apiserver,
// one operator (the real assembly, short GC and lease times) and one AgentDaemon per node, each
// with its own bpffs pin directory and state directory. Pods are Pod objects bound to a node plus
// network namespaces on veths (datapath/netns/pod-network.ts), registered through the node's
// endpoint manager with the EndpointChangeRequest a CNI ADD sends. Everything made here is
// removed by destroy(), also after a failure.
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { CiliumIdentity, CiliumNode } from '../../crds/gen/index.js';
import { AgentDaemon } from '../../controllers/agent/daemon.js';
import type { EndpointChangeRequest } from '../../controllers/agent/endpoint/change-request.js';
import type { EndpointRecord } from '../../controllers/agent/endpoint/endpoint.js';
import { loadAgentConfig } from '../../controllers/config/agent.js';
import { loadOperatorConfig } from '../../controllers/config/operator.js';
import { buildOperator, type Operator } from '../../controllers/operator/operator.js';
import { isNotFound, newApiClient, type ApiClient } from '../../controllers/runtime/apiclient.js';
import { ciliumEndpoints, ciliumIdentities, ciliumNetworkPolicies, ciliumNodes, collectionPath, objectPath, pods as podType } from '../../controllers/runtime/kinds.js';
import { newLogger } from '../../controllers/runtime/log.js';
import { makeBpffsDir, removeDir } from '../../datapath/libbpf/testdata/fixtures.js';
import { decodeIpcacheKey } from '../../datapath/maps/ipcache.js';
import { BpfMap } from '../../datapath/libbpf/map.js';
import { BPFFS_ROOT, endpointIdOfPolicyPin } from '../../datapath/linux/paths.js';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { apiRequest } from '../../hack/controlplane/http.js';
import { repoRoot } from '../../hack/controlplane/paths.js';
import { isRunning, killNow, startProcess } from '../../hack/controlplane/process.js';
import { freePorts } from '../../hack/controlplane/ports.js';
import type { RunningControlPlane } from '../../hack/controlplane/controlplane.js';
import { awaitFirstAnswer, ChildSet, killChild } from '../datapath/children.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { kubectl, sharedControlPlane, testNamespace } from '../envtest/index.js';
import { pollUntil } from '../envtest/poll.js';

export const NODE_A = 'e2e-node-a';
export const NODE_B = 'e2e-node-b';
const PIN_PREFIX = 'cilium-ts-e2e-';
// Each node's pod network (netns and veth names start with it), swept by the next run after a crash.
const NET_PREFIX: Record<string, string> = { [NODE_A]: 'e2ea', [NODE_B]: 'e2eb' };
/** Netns+veth slots per node, made once; a pod takes a free slot and gives it back when removed. */
const SLOTS_PER_NODE = 8;
// Loading the agent under tsx and restoring takes a few seconds; a loaded machine gets slack.
const AGENT_PROCESS_TIMEOUT_MS = 30_000;
const APISERVER_READY_TIMEOUT_MS = 60_000;
const LOG_LEVEL = process.env.CILIUM_TS_LOG_LEVEL ?? 'error';

/** Identity GC of the test operator: marked within 0.5 s, deleted 2 s after the mark. */
export const IDENTITY_HEARTBEAT_MS = 2000;
export const OPERATOR_ARGS = [
  '--identity-gc-interval=500ms',
  `--identity-heartbeat-timeout=${IDENTITY_HEARTBEAT_MS}ms`,
  '--leader-election-lease-duration=2s',
  '--leader-election-renew-deadline=1500ms',
  '--leader-election-retry-period=250ms',
  '--operator-api-serve-addr=127.0.0.1:0',
  '--operator-prometheus-serve-addr=',
  '--cluster-pool-ipv4-mask-size=24',
];

export interface PodSpec {
  name: string;
  labels: Record<string, string>;
}

export interface RunningAgent {
  name: string;
  daemon: AgentDaemon;
  done: Promise<void>;
}

interface NodeDirs {
  pinDir: string;
  stateDir: string;
}

export interface PodHandle {
  /** Pod object name. */
  name: string;
  node: string;
  net: PodNetwork;
  /** The pod's name in `net` (for PodNetwork.exec/spawn and PodAgent). */
  slot: string;
  ip: string;
  endpoint: EndpointRecord;
}

interface RunningOperator {
  operator: Operator;
  done: Promise<void>;
}

interface NodeNetwork {
  net: PodNetwork;
  free: string[];
}

export class E2ECluster {
  readonly agents = new Map<string, RunningAgent>();
  private readonly dirs = new Map<string, NodeDirs>();
  private readonly networks = new Map<string, NodeNetwork>();
  private readonly children = new ChildSet();
  private readonly operators: RunningOperator[] = [];
  /** Operators that ended on their own (lost Lease) and were started again. */
  operatorRestarts = 0;

  private constructor(
    readonly cp: RunningControlPlane,
    readonly client: ApiClient,
    readonly namespace: string,
    private readonly nsCleanup: () => Promise<void>,
    /** Random /16 (10.250-254.0.0) the node podCIDRs are carved from; no other test routes it. */
    readonly clusterCidr: string,
  ) {}

  /** The operator started last (the leader after a failover). */
  get operator(): Operator {
    const op = this.operators.at(-1)?.operator;
    if (op === undefined) throw new Error('e2e cluster: no operator running');
    return op;
  }

  static async start(): Promise<E2ECluster> {
    const cp = await sharedControlPlane();
    const client = newApiClient(cp.kubeConfig);
    await sweep(client);
    const ns = await testNamespace(cp);
    const clusterCidr = `10.${randomInt(250, 255)}.0.0/16`;
    const cluster = new E2ECluster(cp, client, ns.name, () => ns.cleanup(), clusterCidr);
    try {
      cluster.startOperator();
      for (const node of [NODE_A, NODE_B]) {
        await cluster.startAgent(node);
        const slots = Array.from({ length: SLOTS_PER_NODE }, (_, i) => `s${i}`);
        const net = await PodNetwork.create({ prefix: NET_PREFIX[node]!, pods: slots, subnet: await cluster.subnetOf(node) });
        cluster.networks.set(node, { net, free: slots });
      }
    } catch (err) {
      await cluster.destroy().catch(() => undefined);
      throw err;
    }
    return cluster;
  }

  private startOperator(): Operator {
    const config = loadOperatorConfig([...OPERATOR_ARGS, `--cluster-pool-ipv4-cidr=${this.clusterCidr}`], {});
    const operator = buildOperator({
      config,
      client: this.client,
      logger: newLogger('e2e-operator', LOG_LEVEL),
      identity: `e2e-op-${randomBytes(3).toString('hex')}`,
      leaseNamespace: this.namespace,
      namespace: this.namespace,
      policyStatusDebounceMs: 100,
      // No Node objects exist beside envtest: the node GC would delete the agents' CiliumNodes.
      nodeGC: false,
    });
    const running = { operator, done: operator.manager.start() };
    this.operators.push(running);
    // An operator that loses its Lease exits (as upstream's does) and its pod is restarted: the
    // harness plays the kubelet for any operator that ends without being stopped.
    void running.done.then(
      () => this.restartOperator(running),
      () => this.restartOperator(running),
    );
    return operator;
  }

  private restartOperator(running: RunningOperator): void {
    const i = this.operators.indexOf(running);
    if (i < 0) return;
    const wasCurrent = i === this.operators.length - 1;
    this.operators.splice(i, 1);
    this.operatorRestarts++;
    if (wasCurrent) this.startOperator();
  }

  private async stopOperator(operator: Operator): Promise<void> {
    const running = this.operators.find((o) => o.operator === operator);
    if (running === undefined) return;
    this.operators.splice(this.operators.indexOf(running), 1);
    operator.manager.stop();
    await running.done.catch(() => undefined);
  }

  /**
   * Starts a second operator, checks it stands by while the first leads, stops the leader and
   * resolves once the standby leads (it is `operator` from then on), with the takeover time.
   */
  async failoverOperator(): Promise<{ standbyLedEarly: boolean; takeoverMs: number }> {
    const leader = this.operator;
    await pollUntil(`operator ${leader.identity} to lead`, () => leader.manager.isLeader, 10_000);
    const standby = this.startOperator();
    // Two retry periods: long enough for the standby to have tried the Lease.
    await new Promise((r) => setTimeout(r, 600));
    const standbyLedEarly = standby.manager.isLeader;
    const stoppedAt = Date.now();
    await this.stopOperator(leader);
    await pollUntil('the standby operator to lead', () => standby.manager.isLeader, 10_000);
    return { standbyLedEarly, takeoverMs: Date.now() - stoppedAt };
  }

  /**
   * Kills the shared kube-apiserver, runs `during` while it is down (at least `outageMs`), then
   * starts it again with the same command line (same port, certificates and etcd) and waits until
   * it is ready. The control plane's record is pointed at the new process, so the root hook stops it.
   */
  async apiserverOutage(outageMs: number, during: () => Promise<void>): Promise<void> {
    const apiserver = this.cp.record.apiserver;
    if (apiserver === undefined) throw new Error('apiserver outage: the control plane record has no apiserver');
    const [binary, ...args] = readFileSync(`/proc/${apiserver.process.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    if (binary === undefined || !binary.endsWith('kube-apiserver')) throw new Error(`apiserver outage: pid ${apiserver.process.pid} runs ${String(binary)}, not kube-apiserver`);
    const downAt = Date.now();
    killNow(apiserver.process);
    await pollUntil('the apiserver to exit', () => !isRunning(apiserver.process), 10_000);
    try {
      await Promise.all([during(), new Promise((r) => setTimeout(r, outageMs - (Date.now() - downAt)))]);
    } finally {
      apiserver.process = await startProcess({ name: apiserver.process.name, binary, args, logPath: apiserver.process.logPath, detached: false });
      await eventuallyReady(this.cp);
    }
  }

  /** Opens and starts the node's agent (reusing its pin and state directories) and waits for its podCIDR. */
  async startAgent(node: string): Promise<RunningAgent> {
    if (this.agents.has(node)) throw new Error(`agent ${node}: already running`);
    let dirs = this.dirs.get(node);
    if (dirs === undefined) {
      dirs = { pinDir: makeBpffsDir(PIN_PREFIX), stateDir: mkdtempSync(path.join(os.tmpdir(), PIN_PREFIX)) };
      this.dirs.set(node, dirs);
    }
    const config = loadAgentConfig(await this.agentArgs(node, dirs), {});
    // TEST-NET addresses: nothing routes to them, and the pods' traffic never goes via the node IP.
    const nodeIP = node === NODE_A ? '192.0.2.11' : '192.0.2.12';
    const daemon = await AgentDaemon.open({ config, logger: newLogger(`e2e-agent/${node}`, LOG_LEVEL), nodeIP });
    const agent: RunningAgent = { name: node, daemon, done: daemon.start() };
    this.agents.set(node, agent);
    agent.done.catch((err: Error) => newLogger('e2e', 'error').error('agent stopped with an error', { node, error: err.message }));
    await Promise.race([
      daemon.node.waitForPodCIDR(),
      agent.done.then(() => {
        throw new Error(`agent ${node}: stopped before it had a podCIDR`);
      }),
    ]);
    await pollUntil(`agent ${node} restored its endpoints`, () => daemon.restoreReport !== undefined, 10_000);
    return agent;
  }

  private async agentArgs(node: string, dirs: NodeDirs): Promise<string[]> {
    const [healthPort] = await freePorts(1);
    return [
      `--node-name=${node}`,
      `--bpf-pin-dir=${dirs.pinDir}`,
      `--state-dir=${dirs.stateDir}`,
      `--agent-health-port=${healthPort}`,
      '--prometheus-serve-addr=',
      `--k8s-kubeconfig-path=${this.cp.kubeconfigPath}`,
    ];
  }

  /**
   * Runs the node's agent as its own process (cmd/cilium-agent.ts, same pins and state as the
   * in-process one, which must be stopped) until it has restored its endpoints and has IPAM,
   * then SIGKILLs it: nothing of its shutdown runs.
   */
  async killedAgentProcess(node: string): Promise<void> {
    if (this.agents.has(node)) throw new Error(`agent ${node}: stop the in-process agent before running it as a process`);
    const dirs = this.dirs.get(node);
    if (dirs === undefined) throw new Error(`agent ${node}: never started`);
    const args = await this.agentArgs(node, dirs);
    const child = this.children.add(
      spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cmd', 'cilium-agent.ts'), ...args], {
        cwd: repoRoot,
        env: { ...process.env, CILIUM_TS_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let output = '';
    const seen = new Set<string>();
    const wanted = ['endpoints restored', 'IPAM ready'];
    const ready = new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        output += d.toString();
        for (const line of output.split('\n')) {
          for (const w of wanted) if (line.includes(`"message":"${w}"`)) seen.add(w);
        }
        if (wanted.every((w) => seen.has(w))) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
    });
    await awaitFirstAnswer(child, `cilium-agent process of ${node}`, ready, AGENT_PROCESS_TIMEOUT_MS, () => output.slice(-4000));
    await killChild(child);
  }

  /** Stops the node's agent as SIGTERM would: endpoints, programs and pins stay. */
  async stopAgent(node: string): Promise<void> {
    const agent = this.agents.get(node);
    if (agent === undefined) return;
    this.agents.delete(node);
    agent.daemon.stop();
    await agent.done.catch(() => undefined);
  }

  agent(node: string): AgentDaemon {
    const a = this.agents.get(node);
    if (a === undefined) throw new Error(`agent ${node}: not running`);
    return a.daemon;
  }

  /** The first three octets of the node's /24 podCIDR. */
  async subnetOf(node: string): Promise<string> {
    const { podCIDR } = await this.agent(node).node.waitForPodCIDR();
    if (!podCIDR.endsWith('.0/24')) throw new Error(`node ${node}: podCIDR ${podCIDR} is not the /24 the operator was configured for`);
    return podCIDR.slice(0, -'.0/24'.length);
  }

  /**
   * Creates the pods on `node` as a kubelet and CNI would: the Pod object bound to the node, a free
   * netns and veth of the node (its address in the node's podCIDR, above router and health), that
   * address claimed in the node's IPAM, then the endpoint through the endpoint manager.
   */
  async addPods(node: string, specs: readonly PodSpec[]): Promise<PodHandle[]> {
    const out: PodHandle[] = [];
    for (const s of specs) out.push(await this.addPod(node, s));
    return out;
  }

  async addPod(node: string, spec: PodSpec, opts: { ipamAllocates?: boolean } = {}): Promise<PodHandle> {
    const daemon = this.agent(node);
    const network = this.networks.get(node);
    const slot = network?.free.shift();
    if (network === undefined || slot === undefined) throw new Error(`node ${node}: no free pod slot (${SLOTS_PER_NODE} per node)`);
    try {
      const uid = await this.createPodObject(node, spec);
      const pod = network.net.pod(slot);
      if (!opts.ipamAllocates) daemon.node.ipam().claim(pod.ip, `${this.namespace}/${spec.name}`);
      const req: EndpointChangeRequest = {
        state: 'waiting-for-identity',
        'container-id': randomBytes(32).toString('hex'),
        'container-interface-name': 'eth0',
        'container-netns-path': `/var/run/netns/${pod.netns}`,
        'interface-name': pod.hostIfname,
        'interface-index': pod.hostIfindex,
        mac: pod.podMac,
        'host-mac': pod.hostMac,
        ...(opts.ipamAllocates ? {} : { addressing: { ipv4: pod.ip } }),
        'k8s-namespace': this.namespace,
        'k8s-pod-name': spec.name,
        'k8s-uid': uid,
        'sync-build-endpoint': true,
      };
      const endpoint = await daemon.endpoints.create(req);
      return { name: spec.name, node, net: network.net, slot, ip: endpoint.ipv4, endpoint };
    } catch (err) {
      network.free.unshift(slot);
      throw err;
    }
  }

  /** CNI DEL then the Pod object's deletion; the pod's slot is free again. */
  async removePod(pod: PodHandle): Promise<void> {
    await this.agent(pod.node).endpoints.delete(pod.endpoint.id);
    await deleteIfPresent(this.client, `${objectPath(podType, pod.name, this.namespace)}?gracePeriodSeconds=0`);
    this.networks.get(pod.node)?.free.push(pod.slot);
  }

  private async createPodObject(node: string, s: PodSpec): Promise<string> {
    const body: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: s.name, namespace: this.namespace, labels: s.labels },
      spec: { nodeName: node, containers: [{ name: 'c', image: 'localhost/cilium-ts/testbox:v1' }] },
    };
    const created = await this.client.request<V1Pod>('POST', collectionPath(podType, this.namespace), { body });
    const uid = created.metadata?.uid;
    if (!uid) throw new Error(`pod ${this.namespace}/${s.name}: created without a uid`);
    return uid;
  }

  async patchPodLabels(name: string, labels: Record<string, string | null>): Promise<void> {
    await this.client.request('PATCH', objectPath(podType, name, this.namespace), {
      body: { metadata: { labels } },
      contentType: 'application/merge-patch+json',
    });
  }

  /** `kubectl apply -f -` of a manifest; throws with kubectl's stderr when it fails. */
  async kubectlApply(manifest: object): Promise<void> {
    const r = await kubectl(this.cp, ['apply', '-f', '-'], { stdin: JSON.stringify(manifest) });
    if (r.code !== 0) throw new Error(`kubectl apply: exit ${r.code}: ${r.stderr}`);
  }

  async kubectl(args: string[]): Promise<string> {
    const r = await kubectl(this.cp, args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** What the node's maps hold, read from the pins: ipcache prefixes, entry counts, policy map pins. */
  mapEntries(node: string): { ipcache: string[]; lxc: number; policyMaps: number; policyPins: number } {
    const dirs = this.dirs.get(node);
    if (dirs === undefined) throw new Error(`node ${node}: never started`);
    const keysOf = (name: string): Buffer[] => {
      const map = BpfMap.openPinned(path.join(dirs.pinDir, name));
      try {
        return [...map.keys()];
      } finally {
        map.close();
      }
    };
    return {
      ipcache: keysOf('cilium_ipcache_v2').map(decodeIpcacheKey).sort(),
      lxc: keysOf('cilium_lxc').length,
      policyMaps: keysOf('cilium_policy_maps').length,
      policyPins: readdirSync(dirs.pinDir).filter((f) => endpointIdOfPolicyPin(f) !== undefined).length,
    };
  }

  /** The CiliumIdentities whose labels put them in this test's namespace. */
  async identities(): Promise<CiliumIdentity[]> {
    const list = await this.client.request<{ items: CiliumIdentity[] }>('GET', collectionPath(ciliumIdentities));
    return list.items.filter((ci) => ci['security-labels']['k8s:io.kubernetes.pod.namespace'] === this.namespace);
  }

  async ciliumNode(node: string): Promise<CiliumNode> {
    return this.client.request<CiliumNode>('GET', objectPath(ciliumNodes, node));
  }

  /** Agents and operator stopped, pods' networks removed, pins, state, namespace and cluster-scoped objects deleted. */
  async destroy(): Promise<void> {
    const identities = await this.identities().catch(() => [] as CiliumIdentity[]);
    await runCleanup('e2e cluster', [
      ...[...this.agents.keys()].map((n) => [`stop agent ${n}`, () => this.stopAgent(n)] as const),
      ['kill agent processes', () => this.children.killAll()],
      ...this.operators.map(({ operator }) => [`stop operator ${operator.identity}`, () => this.stopOperator(operator)] as const),
      ...[...this.networks.values()].map(({ net }) => [`destroy pod network ${net.prefix}`, () => net.destroy()] as const),
      ...[...this.dirs].map(([n, d]) => [`remove dirs of ${n}`, () => (removeDir(d.pinDir), removeDir(d.stateDir))] as const),
      ['delete namespace', () => this.nsCleanup()],
      ['delete CiliumNodes', () => Promise.all([NODE_A, NODE_B].map((n) => deleteIfPresent(this.client, objectPath(ciliumNodes, n))))],
      ['delete CiliumIdentities', () => Promise.all(identities.map((ci) => deleteIfPresent(this.client, objectPath(ciliumIdentities, ci.metadata.name ?? ''))))],
    ]);
    this.dirs.clear();
    this.networks.clear();
  }
}

// Ready means /readyz and every Cilium CRD served again: a CRD's storage comes back after /readyz
// (429 "storage is (re)initializing" until then).
const READY_PATHS = ['/readyz', ...[ciliumIdentities, ciliumEndpoints, ciliumNodes, ciliumNetworkPolicies].map((t) => `${collectionPath(t)}?limit=1`)];

async function eventuallyReady(cp: RunningControlPlane): Promise<void> {
  const deadline = Date.now() + APISERVER_READY_TIMEOUT_MS;
  let last: string;
  for (const apiPath of READY_PATHS) {
    for (;;) {
      try {
        const r = await apiRequest(cp.kubeConfig, apiPath);
        if (r.status === 200) break;
        last = `HTTP ${r.status} ${r.body.slice(0, 200)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`apiserver not ready ${APISERVER_READY_TIMEOUT_MS} ms after its restart: GET ${apiPath}: ${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function deleteIfPresent(client: ApiClient, apiPath: string): Promise<void> {
  await client.request('DELETE', apiPath).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
}

/** What a crashed earlier run left: the e2e nodes' CiliumNodes, pod networks and pin directories. */
async function sweep(client: ApiClient): Promise<void> {
  await Promise.all([NODE_A, NODE_B].map((n) => deleteIfPresent(client, objectPath(ciliumNodes, n))));
  for (const prefix of Object.values(NET_PREFIX)) await PodNetwork.sweep(prefix);
  for (const d of readdirSync(BPFFS_ROOT)) if (d.startsWith(PIN_PREFIX)) removeDir(path.join(BPFFS_ROOT, d));
}
