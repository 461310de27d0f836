// `npm run cluster -- up [--nodes N] [--routing-mode tunnel|native]|down|status`: the local cluster
// in the background (contracts9 §A): an underlay bridge with a "world" netns, the control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and cilium-operator in the root
// netns, and N nodes, each a netns on the bridge with its own containerd, kubelet and cilium-agent
// (cilium-cni). Each part is a component; `up` starts them stage by stage and records each one's
// state as soon as it runs, so `down` can stop whatever a failed `up` left behind, and sweeps
// what a killed `up` never recorded.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { missingBinaries, missingNodeBinaries, serverBinaryPaths } from './controlplane/binaries.js';
import {
  loadKubeConfig,
  processesOf,
  startControlPlane,
  stopControlPlane,
  type ControlPlaneRecord,
} from './controlplane/controlplane.js';
import {
  RELAY_ADDRESS,
  RELAY_ENTRY,
  agentSocketStatus,
  daemonStatus,
  startNodeAgent,
  startOperator,
  startRelay,
  stopDaemon,
  sweepNodeAgent,
  sweepOperator,
  sweepRelay,
  type ClusterInfo,
  type DaemonRecord,
  type RoutingMode,
} from './cluster-daemons.js';
import { apiRequest, httpRequest } from './controlplane/http.js';
import { writeKubeconfig } from './controlplane/kubeconfig.js';
import { kubeControllerProcesses, startKubeControllers, stopKubeControllers, type KubeControllersRecord } from './controlplane/kube-controllers.js';
import { defaultBinDir, repoRoot } from './controlplane/paths.js';
import { isRunning, pidsMentioning, stopPid, type ProcessRecord } from './controlplane/process.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { containerdStatus, startContainerd, stopContainerd, type ContainerdRecord } from './node/containerd.js';
import { ensureCniBinDir } from './node/cni.js';
import { buildImages, type ImageArchive } from './node/images.js';
import { kubeletStatus, startKubelet, stopKubelet, waitNode, type KubeletRecord } from './node/kubelet.js';
import { type NodeLayout, nodeLayout } from './node/layout.js';
import { enterNode, namespacesStatus, startNodeNamespaces, stopNodeNamespaces, type NodeNamespacesRecord } from './node/namespaces.js';
import { UNDERLAY, WORLD, linkExists, nodeIP, nodeName, nodeNetnsName } from './node/underlay.js';
import { startUnderlay, stopUnderlay, type UnderlayRecord } from './node/world.js';


interface ClusterNode {
  index: number;
  layout: NodeLayout;
}

interface ClusterContext {
  stateDir: string;
  binDir: string;
  kubeconfigPath: string;
  /** The same admin credentials, with the apiserver at its underlay address (nodes have no loopback way to it). */
  nodeKubeconfigPath: string;
  // Where components keep their files; removed by `down`.
  clusterDir: string;
  nodes: ClusterNode[];
  routingMode: RoutingMode;
}

interface ComponentStatus {
  healthy: boolean;
  lines: string[];
}

interface ClusterComponent<State> {
  name: string;
  up(ctx: ClusterContext, state: ClusterState): Promise<State>;
  status(ctx: ClusterContext, state: State): Promise<ComponentStatus>;
  down(ctx: ClusterContext, state: State): Promise<void>;
  describe(ctx: ClusterContext, state: State): string;
  // For a component `up` never recorded (killed while starting it): removes what it may have left.
  sweep?(ctx: ClusterContext): Promise<void>;
}

interface ClusterState {
  nodes: number;
  routingMode: RoutingMode;
  components: Record<string, unknown>;
  // Paths `up` created outside clusterDir, removed by `down`.
  created: string[];
}

// The operator's default cluster-pool (its --cluster-pool-ipv4-cidr default).
const CLUSTER_POD_CIDR = '10.0.0.0/8';
const DEFAULT_NODES = 2;
const MAX_NODES = 50;

function processLines(processes: ProcessRecord[]): string[] {
  return processes.map((p) => `${p.name}: ${isRunning(p) ? 'running' : 'NOT running'} (pid ${p.pid}, log ${p.logPath})`);
}

const logPath = (ctx: ClusterContext, name: string): string => path.join(ctx.stateDir, 'logs', `${name}.log`);

const underlay: ClusterComponent<UnderlayRecord> = {
  name: 'underlay',
  async up(ctx) {
    await mkdir(path.join(ctx.stateDir, 'logs'), { recursive: true });
    return startUnderlay(path.join(ctx.clusterDir, 'underlay'), logPath(ctx, 'world-httpd'));
  },
  status(_ctx, record) {
    const bridge = linkExists(UNDERLAY.bridge);
    const httpd = record.httpd !== undefined && isRunning(record.httpd);
    return Promise.resolve({
      healthy: bridge && httpd,
      lines: [
        `bridge ${UNDERLAY.bridge} ${UNDERLAY.hostIP}/${UNDERLAY.prefixLength}: ${bridge ? 'present' : 'MISSING'}`,
        `world ${WORLD.ip} (netns ${WORLD.netns}): httpd ${httpd ? 'running' : 'NOT running'} (pid ${record.httpd?.pid})`,
      ],
    });
  },
  async down(ctx, record) {
    await stopUnderlay(path.join(ctx.clusterDir, 'underlay'), record);
    await rm(logPath(ctx, 'world-httpd'), { force: true });
  },
  async sweep(ctx) {
    await stopUnderlay(path.join(ctx.clusterDir, 'underlay'), undefined);
    await rm(logPath(ctx, 'world-httpd'), { force: true });
  },
  describe: () => `underlay: bridge ${UNDERLAY.bridge} (${UNDERLAY.cidr}, host ${UNDERLAY.hostIP}), world ${WORLD.ip} in netns ${WORLD.netns} (HTTP :${WORLD.httpPort})`,
};

const controlPlane: ClusterComponent<ControlPlaneRecord> = {
  name: 'control-plane',
  async up(ctx) {
    const cp = await startControlPlane({
      binDir: ctx.binDir,
      workDir: path.join(ctx.clusterDir, 'control-plane'),
      kubeconfigPath: ctx.kubeconfigPath,
      detached: true,
      external: { advertiseAddress: UNDERLAY.hostIP },
    });
    if (cp.record.pki === undefined) throw new Error('control plane: started without certificates');
    await writeKubeconfig(ctx.nodeKubeconfigPath, nodeServerUrl(cp.record), cp.record.pki);
    return cp.record;
  },
  async status(_ctx, record) {
    const processes = processesOf(record);
    const lines = processLines(processes);
    let ready = false;
    try {
      const res = await apiRequest(loadKubeConfig(record.kubeconfigPath), '/readyz');
      ready = res.status === 200;
      lines.push(`kube-apiserver ${record.serverUrl}/readyz: HTTP ${res.status} ${res.body.trim().slice(0, 200)}`);
    } catch (err) {
      lines.push(`kube-apiserver ${record.serverUrl}/readyz: ${(err as Error).message}`);
    }
    return { healthy: ready && processes.length === 2 && processes.every(isRunning), lines };
  },
  down: (_ctx, record) => stopControlPlane(record),
  describe: (_ctx, record) =>
    `control plane: kube-apiserver ${record.serverUrl} (nodes: ${nodeServerUrl(record)}, pid ${record.apiserver?.process.pid}), etcd ${record.etcd?.clientUrl} (pid ${record.etcd?.process.pid}), ${record.crds.length} CRDs, ready in ${(record.startMs / 1000).toFixed(1)}s`,
};

function nodeServerUrl(record: ControlPlaneRecord): string {
  return `https://${UNDERLAY.hostIP}:${new URL(record.serverUrl).port}`;
}

const kubeControllers: ClusterComponent<KubeControllersRecord> = {
  name: 'kube-controllers',
  async up(ctx, state) {
    const cp = state.components['control-plane'] as ControlPlaneRecord | undefined;
    if (cp?.pki === undefined) throw new Error('kube-controllers: the control plane record has no certificates; run `npm run cluster -- down` and `up` again');
    return startKubeControllers({ binDir: ctx.binDir, workDir: cp.workDir, kubeconfigPath: ctx.kubeconfigPath, pki: cp.pki });
  },
  async status(_ctx, record) {
    const processes = kubeControllerProcesses(record);
    const lines = processLines(processes);
    let healthy = processes.length === 2 && processes.every(isRunning);
    for (const url of record.healthUrls) {
      try {
        const res = await httpRequest(url, { rejectUnauthorized: false });
        healthy &&= res.status === 200;
        lines.push(`${url}: HTTP ${res.status} ${res.body.trim().slice(0, 100)}`);
      } catch (err) {
        healthy = false;
        lines.push(`${url}: ${(err as Error).message}`);
      }
    }
    return { healthy, lines };
  },
  down: (_ctx, record) => stopKubeControllers(record),
  describe: (_ctx, record) => `kube-controller-manager (pid ${record.controllerManager?.pid}), kube-scheduler (pid ${record.scheduler?.pid})`,
};

function daemonComponent(name: string, start: (ctx: ClusterContext) => Promise<DaemonRecord>, sweep: (ctx: ClusterContext) => Promise<void>): ClusterComponent<DaemonRecord> {
  return {
    name,
    up: start,
    sweep,
    status: (_ctx, record) => daemonStatus(name, record),
    down: (_ctx, record) => stopDaemon(record),
    describe: (_ctx, record) => `${name}: pid ${record.process.pid}, health ${record.healthUrl}${record.metricsUrl ? `, metrics ${record.metricsUrl}` : ''}, log ${record.process.logPath}`,
  };
}

const operator = daemonComponent('operator', startOperator, sweepOperator);
// The relay peers through the first node's agent, which lists every node (contracts9 §A, §D).
const relay = daemonComponent('hubble-relay', (ctx) => startRelay(ctx, `${nodeIP(1)}:4244`), sweepRelay);

// Done once per `up` however many nodes start at once: they share the images and the CNI bin dir.
let nodeAssets: Promise<ImageArchive[]> | undefined;
function prepareNodeAssets(cniBinDir: string): Promise<ImageArchive[]> {
  nodeAssets ??= ensureCniBinDir(cniBinDir).then(() => buildImages());
  return nodeAssets;
}

function recordOf<T>(state: ClusterState, name: string): T {
  const record = state.components[name] as T | undefined;
  if (record === undefined) throw new Error(`${name} is not recorded as started; run \`npm run cluster -- down\` and \`up\` again`);
  return record;
}

const crictlPath = (ctx: ClusterContext): string => path.join(ctx.binDir, 'crictl');

interface NodeComponents {
  namespaces: ClusterComponent<NodeNamespacesRecord>;
  containerd: ClusterComponent<ContainerdRecord>;
  kubelet: ClusterComponent<KubeletRecord>;
  agent: ClusterComponent<DaemonRecord>;
}

/** The components of one node: its namespaces, containerd, kubelet and agent. */
function nodeComponents({ index, layout }: ClusterNode): NodeComponents {
  const name = (kind: string): string => `${kind}/${layout.name}`;
  const log = (ctx: ClusterContext, kind: string): string => logPath(ctx, `${kind}-${layout.name}`);
  const namespaces: ClusterComponent<NodeNamespacesRecord> = {
    name: name('namespaces'),
    async up(ctx) {
      await mkdir(path.join(ctx.stateDir, 'logs'), { recursive: true });
      return startNodeNamespaces(layout, index, log(ctx, 'mount-ns'));
    },
    status: (_ctx, record) => Promise.resolve(namespacesStatus(record)),
    async down(ctx, record) {
      await stopNodeNamespaces(layout, index, record);
      await rm(log(ctx, 'mount-ns'), { force: true });
    },
    async sweep(ctx) {
      await stopNodeNamespaces(layout, index, undefined);
      await rm(log(ctx, 'mount-ns'), { force: true });
    },
    describe: (_ctx, record) => `${layout.name}: netns ${record.netns}, eth0 ${record.nodeIP}`,
  };
  const containerd: ClusterComponent<ContainerdRecord> = {
    name: name('containerd'),
    async up(ctx, state) {
      const images = await prepareNodeAssets(layout.cniBinDir);
      return startContainerd(layout, log(ctx, 'containerd'), images, enterNode(recordOf(state, namespaces.name)));
    },
    status: (_ctx, record) => containerdStatus(layout, record),
    async down(_ctx, record) {
      await stopContainerd(layout, record);
      await rm(record.process.logPath, { force: true });
    },
    describe: (_ctx, record) => `containerd ${layout.name}: pid ${record.process.pid}, socket ${layout.containerdSocket}, log ${record.process.logPath}`,
    async sweep(ctx) {
      await stopContainerd(layout, undefined);
      await rm(log(ctx, 'containerd'), { force: true });
    },
  };
  const kubelet: ClusterComponent<KubeletRecord> = {
    name: name('kubelet'),
    async up(ctx, state) {
      const ns = recordOf<NodeNamespacesRecord>(state, namespaces.name);
      return startKubelet(layout, {
        binary: path.join(ctx.binDir, 'kubelet'),
        kubeConfig: loadKubeConfig(ctx.kubeconfigPath),
        kubeconfigPath: ctx.nodeKubeconfigPath,
        nodeIP: ns.nodeIP,
        logPath: log(ctx, 'kubelet'),
        enter: enterNode(ns),
      });
    },
    status: (ctx, record) => kubeletStatus(loadKubeConfig(ctx.kubeconfigPath), layout, record),
    async down(ctx, record) {
      await stopKubelet(layout, record, crictlPath(ctx));
      if (record.process) await rm(record.process.logPath, { force: true });
    },
    describe: (_ctx, record) => `kubelet ${layout.name}: ${record.nodeIP}, pid ${record.process?.pid}, log ${record.process?.logPath}`,
    async sweep(ctx) {
      await stopKubelet(layout, undefined, crictlPath(ctx));
      await rm(log(ctx, 'kubelet'), { force: true });
    },
  };
  // The agent reaches the apiserver over the underlay, as kubelet does.
  const daemonCtx = (ctx: ClusterContext) => ({ stateDir: ctx.stateDir, kubeconfigPath: ctx.nodeKubeconfigPath });
  const agent: ClusterComponent<DaemonRecord> = {
    name: name('agent'),
    async up(ctx, state) {
      const ns = recordOf<NodeNamespacesRecord>(state, namespaces.name);
      const record = await startNodeAgent(daemonCtx(ctx), layout, ns, { routingMode: ctx.routingMode, clusterPodCIDR: CLUSTER_POD_CIDR });
      // The agent writes the CNI config once ready; only then does kubelet report the node Ready.
      await waitNode(loadKubeConfig(ctx.kubeconfigPath), layout.name, 'ready').catch(async (err: unknown) => {
        await stopDaemon(record);
        throw err;
      });
      return record;
    },
    async status(_ctx, record) {
      const s = await daemonStatus(`agent ${layout.name}`, record);
      const socket = await agentSocketStatus(layout.agentSocket);
      return { healthy: s.healthy && socket.healthy, lines: [...s.lines, socket.line] };
    },
    down: (_ctx, record) => stopDaemon(record),
    sweep: (ctx) => sweepNodeAgent(daemonCtx(ctx), layout),
    describe: (_ctx, record) => `agent ${layout.name}: pid ${record.process.pid}, API ${layout.agentSocket}, health ${record.healthUrl} (in ${record.netns}), metrics ${record.metricsUrl}, log ${record.process.logPath}`,
  };
  return { namespaces, containerd, kubelet, agent };
}

type Stage = ClusterComponent<unknown>[];

/**
 * Up: each stage starts its components at once; a stage begins when the one before is up. The
 * operator assigns the podCIDRs the agents wait for; the agents come after kubelet registered the
 * Node they belong to (the operator collects CiliumNodes of unknown Nodes); the relay (once
 * cmd/ has it) after the agents it peers with. Down: kubelets first so they recreate no pod and
 * remove the pods while containerd and the agent (the CNI plugin's other half) still answer; the
 * underlay last, as it takes every node netns with it.
 */
function plan(ctx: ClusterContext): { up: Stage[]; down: Stage[] } {
  const nodes = ctx.nodes.map(nodeComponents);
  const each = (kind: keyof NodeComponents): Stage => nodes.map((n) => n[kind] as ClusterComponent<unknown>);
  const relays = (existsSync(path.join(repoRoot, 'cmd', RELAY_ENTRY)) ? [relay] : []) as Stage;
  const up: Stage[] = [
    [underlay, controlPlane] as Stage,
    [kubeControllers, operator, ...each('namespaces')] as Stage,
    each('containerd'),
    each('kubelet'),
    each('agent'),
    relays,
  ];
  const down: Stage[] = [relays, each('kubelet'), each('containerd'), each('agent'), each('namespaces'), [operator, kubeControllers] as Stage, [controlPlane] as Stage, [underlay] as Stage];
  return { up: up.filter((s) => s.length > 0), down: down.filter((s) => s.length > 0) };
}

const allComponents = (ctx: ClusterContext): Stage => plan(ctx).up.flat();

const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)}s`;

function statePath(ctx: ClusterContext): string {
  return path.join(ctx.clusterDir, 'state.json');
}

async function readState(ctx: ClusterContext): Promise<ClusterState | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(ctx), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as ClusterState;
  } catch (err) {
    throw new Error(`cluster state ${statePath(ctx)} is not valid JSON (${(err as Error).message}); remove ${ctx.clusterDir} by hand`, {
      cause: err,
    });
  }
}

async function writeState(ctx: ClusterContext, state: ClusterState): Promise<void> {
  await mkdir(ctx.clusterDir, { recursive: true });
  await writeFile(statePath(ctx), `${JSON.stringify(state, null, 2)}\n`);
}

async function clusterStatus(ctx: ClusterContext, state: ClusterState): Promise<ComponentStatus> {
  const result: ComponentStatus = { healthy: true, lines: [`nodes: ${ctx.nodes.map((n) => n.layout.name).join(', ')} (routing mode ${ctx.routingMode})`] };
  for (const component of allComponents(ctx)) {
    const componentState = state.components[component.name];
    if (componentState === undefined) {
      result.healthy = false;
      result.lines.push(`${component.name}: not started`);
      continue;
    }
    const s = await component.status(ctx, componentState);
    result.healthy &&= s.healthy;
    result.lines.push(...s.lines.map((l) => `${component.name}: ${l}`));
  }
  return result;
}

const clusterInfoPath = (ctx: ClusterContext): string => path.join(ctx.stateDir, 'cluster.json');

async function down(ctx: ClusterContext, state: ClusterState): Promise<void> {
  const errors: string[] = [];
  await rm(clusterInfoPath(ctx), { force: true });
  for (const stage of plan(ctx).down) {
    await Promise.all(
      stage.map(async (component) => {
        const componentState = state.components[component.name];
        const t0 = Date.now();
        try {
          if (componentState !== undefined) await component.down(ctx, componentState);
          else await component.sweep?.(ctx);
        } catch (err) {
          errors.push(`${component.name}: ${(err as Error).message}`);
        }
        if (componentState !== undefined) console.log(`stopped ${component.name} in ${seconds(t0)}`);
      }),
    );
  }
  // An `up` killed before it recorded a component leaves processes only its command line names.
  const servers = [...serverBinaryPaths(ctx.binDir), ...['kube-controller-manager', 'kube-scheduler'].map((b) => path.join(ctx.binDir, b))];
  for (const pid of pidsMentioning(ctx.clusterDir, servers)) {
    try {
      await stopPid(pid, `unrecorded process ${pid} using ${ctx.clusterDir}`);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length > 0) throw new Error(`cluster down: ${errors.join('; ')}; state kept in ${statePath(ctx)}`);
  for (const p of state.created) await rm(p, { recursive: true, force: true });
  await rm(ctx.clusterDir, { recursive: true, force: true });
  await rmdir(path.join(ctx.stateDir, 'logs')).catch(() => undefined);
}

function missingTools(binDir: string): string[] {
  return [...missingBinaries(binDir), ...missingNodeBinaries(binDir)];
}

function ensureTools(binDir: string): void {
  if (missingTools(binDir).length === 0) return;
  console.log(`building the missing tools (${missingTools(binDir).join(', ')}) with hack/install-tools.sh`);
  const result = spawnSync('bash', [path.join(repoRoot, 'hack', 'install-tools.sh'), 'tools'], { stdio: 'inherit' });
  const missing = missingTools(binDir);
  if (result.status !== 0 || missing.length > 0) {
    throw new Error(`cluster up: ${missing.join(', ') || 'tools'} still missing in ${binDir} after hack/install-tools.sh (exit ${result.status}); run \`npm run setup\``);
  }
}

// `.local/bin/kubectl` is the documented way in; with another state dir it points at the built one.
async function ensureKubectl(ctx: ClusterContext, state: ClusterState): Promise<string> {
  const link = path.join(ctx.stateDir, 'bin', 'kubectl');
  if (existsSync(link)) return link;
  const binDir = path.dirname(link);
  if (!existsSync(binDir)) {
    await mkdir(binDir, { recursive: true });
    state.created.push(binDir);
  } else {
    state.created.push(link);
  }
  await symlink(path.join(ctx.binDir, 'kubectl'), link);
  return link;
}

function printUsage(ctx: ClusterContext, state: ClusterState, kubectlPath: string): void {
  for (const component of allComponents(ctx)) {
    const componentState = state.components[component.name];
    if (componentState !== undefined) console.log(component.describe(ctx, componentState));
  }
  console.log(`
use it:
  export KUBECONFIG=${ctx.kubeconfigPath}
  ${kubectlPath} get nodes
  nsenter --net=/run/netns/${nodeNetnsName(1)} <command>    # a command on ${nodeName(1)}
stop it:
  npm run cluster -- down`);
}

function clusterInfo(ctx: ClusterContext): ClusterInfo {
  return {
    nodes: ctx.nodes.map((n) => n.layout.name),
    routingMode: ctx.routingMode,
    underlay: { bridge: UNDERLAY.bridge, hostIP: UNDERLAY.hostIP, cidr: UNDERLAY.cidr },
    world: { netns: WORLD.netns, ip: WORLD.ip, httpPort: WORLD.httpPort },
    clusterPodCIDR: CLUSTER_POD_CIDR,
    relay: RELAY_ADDRESS,
  };
}

async function up(ctx: ClusterContext): Promise<void> {
  const existing = await readState(ctx);
  if (existing !== undefined) {
    const existingCtx = withNodes(ctx, existing.nodes, existing.routingMode);
    const status = await clusterStatus(existingCtx, existing);
    if (status.healthy && existing.nodes === ctx.nodes.length && existing.routingMode === ctx.routingMode) {
      console.log('cluster is already up');
      printUsage(existingCtx, existing, path.join(ctx.stateDir, 'bin', 'kubectl'));
      return;
    }
    console.log(
      status.healthy
        ? `cluster is up with ${existing.nodes} nodes in ${existing.routingMode} mode; taking it down first`
        : `cluster state found but not healthy; stopping what is left first:\n  ${status.lines.join('\n  ')}`,
    );
    await down(existingCtx, existing);
  }
  ensureTools(ctx.binDir);
  const state: ClusterState = { nodes: ctx.nodes.length, routingMode: ctx.routingMode, components: {}, created: [] };
  await writeState(ctx, state);
  const started = Date.now();
  let written = Promise.resolve();
  for (const stage of plan(ctx).up) {
    const results = await Promise.allSettled(
      stage.map(async (component) => {
        const t0 = Date.now();
        console.log(`starting ${component.name}...`);
        const componentState = await component.up(ctx, state);
        // Recorded at once, so `down` finds it even when another part of the stage fails.
        state.components[component.name] = componentState;
        written = written.then(() => writeState(ctx, state));
        await written;
        console.log(`  ${component.name} up in ${seconds(t0)}`);
      }),
    );
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${stage[i]?.name}: ${(r.reason as Error).message}`] : []));
    if (failed.length > 0) throw new Error(`cluster up failed (\`npm run cluster -- down\` removes what started):\n${failed.join('\n')}`);
  }
  const kubectlPath = await ensureKubectl(ctx, state);
  await writeState(ctx, state);
  await writeFile(clusterInfoPath(ctx), `${JSON.stringify(clusterInfo(ctx), null, 2)}\n`);
  console.log(`cluster is up: ${ctx.nodes.length} nodes in ${seconds(started)}`);
  printUsage(ctx, state, kubectlPath);
}

// Exit codes follow LSB `status`: 0 running, 1 partly running or unhealthy, 3 not running.
async function status(ctx: ClusterContext): Promise<number> {
  const state = await readState(ctx);
  if (state === undefined) {
    console.log(`cluster is not running (no state in ${ctx.clusterDir})`);
    return 3;
  }
  const result = await clusterStatus(withNodes(ctx, state.nodes, state.routingMode), state);
  console.log(result.healthy ? 'cluster is up' : 'cluster is NOT healthy');
  for (const line of result.lines) console.log(`  ${line}`);
  return result.healthy ? 0 : 1;
}

/**
 * Kills a node's agent as a crash would (SIGKILL: no cleanup of its own) and starts it again with
 * the same options; pods, pins and devices stay, so live connections must survive it.
 */
async function restartAgent(base: ClusterContext, nodeNameArg: string): Promise<void> {
  const state = await readState(base);
  if (state === undefined) throw new Error(`cluster is not running (no state in ${base.clusterDir})`);
  const ctx = withNodes(base, state.nodes, state.routingMode);
  const target = ctx.nodes.find((n) => n.layout.name === nodeNameArg);
  if (target === undefined) throw new Error(`restart-agent: no node ${JSON.stringify(nodeNameArg)}; nodes: ${ctx.nodes.map((n) => n.layout.name).join(', ')}`);
  const agent = nodeComponents(target).agent;
  const record = recordOf<DaemonRecord>(state, agent.name);
  const t0 = Date.now();
  if (isRunning(record.process)) process.kill(record.process.pid, 'SIGKILL');
  while (isRunning(record.process)) {
    if (Date.now() - t0 > 10_000) throw new Error(`restart-agent: agent ${nodeNameArg} (pid ${record.process.pid}) still runs 10 s after SIGKILL`);
    await sleep(20);
  }
  state.components[agent.name] = await agent.up(ctx, state);
  await writeState(ctx, state);
  console.log(`agent ${nodeNameArg} killed and running again in ${seconds(t0)}`);
}

function withNodes(ctx: ClusterContext, count: number, routingMode: RoutingMode): ClusterContext {
  const nodes = Array.from({ length: count }, (_, i) => ({ index: i + 1, layout: nodeLayout(ctx.stateDir, nodeName(i + 1)) }));
  return { ...ctx, nodes, routingMode };
}

interface GlobalOptions {
  stateDir: string;
  binDir: string;
}

function contextFrom(opts: GlobalOptions, nodes = DEFAULT_NODES, routingMode: RoutingMode = 'tunnel'): ClusterContext {
  const stateDir = path.resolve(opts.stateDir);
  const clusterDir = path.join(stateDir, 'cluster');
  const base: ClusterContext = {
    stateDir,
    binDir: path.resolve(opts.binDir),
    kubeconfigPath: path.join(stateDir, 'kubeconfig'),
    nodeKubeconfigPath: path.join(clusterDir, 'kubeconfig-nodes'),
    clusterDir,
    nodes: [],
    routingMode,
  };
  return withNodes(base, nodes, routingMode);
}

function parseNodes(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODES) throw new InvalidArgumentError(`--nodes must be an integer from 1 to ${MAX_NODES}, got ${JSON.stringify(value)}`);
  return n;
}

function parseRoutingMode(value: string): RoutingMode {
  if (value !== 'tunnel' && value !== 'native') throw new InvalidArgumentError(`--routing-mode must be tunnel or native, got ${JSON.stringify(value)}`);
  return value;
}

const program = new Command('cluster')
  .description('the local cilium-ts cluster (control plane with the cilium.io CRDs, cilium-operator, N nodes in their own network namespaces on a host bridge, each with containerd, kubelet and cilium-agent), run in the background')
  .option('--state-dir <dir>', 'where the kubeconfig, pids, logs and data live (env CILIUM_TS_STATE_DIR)', process.env.CILIUM_TS_STATE_DIR ?? path.join(repoRoot, '.local'))
  .option('--bin-dir <dir>', 'where etcd, the Kubernetes binaries and crictl are (env CILIUM_TS_BIN_DIR)', defaultBinDir());

program
  .command('up')
  .description('start the cluster unless it is up')
  .option('--nodes <n>', 'how many nodes', parseNodes, DEFAULT_NODES)
  .option('--routing-mode <mode>', 'how pod traffic crosses nodes: tunnel (VXLAN) or native', parseRoutingMode, 'tunnel' as RoutingMode)
  .action(async (opts: { nodes: number; routingMode: RoutingMode }) => up(contextFrom(program.opts<GlobalOptions>(), opts.nodes, opts.routingMode)));
program
  .command('status')
  .description('say what runs; exit 0 up, 1 unhealthy, 3 down')
  .action(async () => {
    process.exitCode = await status(contextFrom(program.opts<GlobalOptions>()));
  });
program
  .command('restart-agent <node>')
  .description("kill a node's cilium-agent (SIGKILL, as a crash) and start it again")
  .action(async (node: string) => restartAgent(contextFrom(program.opts<GlobalOptions>()), node));
program
  .command('down')
  .description('stop the cluster and remove what `up` created')
  .action(async () => {
    const ctx = contextFrom(program.opts<GlobalOptions>());
    const state = await readState(ctx);
    if (state === undefined) {
      console.log(`cluster is not running (no state in ${ctx.clusterDir})`);
      return;
    }
    const t0 = Date.now();
    await down(withNodes(ctx, state.nodes, state.routingMode), state);
    console.log(`cluster is down in ${seconds(t0)}`);
  });

try {
  await program.parseAsync();
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}
