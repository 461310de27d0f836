// `npm run cluster -- up|down|status`: the local cluster in the background: control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), cilium-operator, and this host
// as a node (containerd, kubelet, cilium-agent with cilium-cni). Each part is a component; `up`
// starts them stage by stage and records each one's state as soon as it runs, so `down` can stop
// whatever a failed `up` left behind, and sweeps what a killed `up` never recorded.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { missingBinaries, missingNodeBinaries, serverBinaryPaths } from './controlplane/binaries.js';
import {
  loadKubeConfig,
  processesOf,
  startControlPlane,
  stopControlPlane,
  type ControlPlaneRecord,
} from './controlplane/controlplane.js';
import { agentSocketStatus, daemonStatus, hostNodeName, startHostAgent, startOperator, stopDaemon, sweepHostAgent, sweepOperator, type DaemonRecord } from './cluster-daemons.js';
import { apiRequest, httpRequest } from './controlplane/http.js';
import { kubeControllerProcesses, startKubeControllers, stopKubeControllers, type KubeControllersRecord } from './controlplane/kube-controllers.js';
import { defaultBinDir, repoRoot } from './controlplane/paths.js';
import { isRunning, pidsMentioning, stopPid, type ProcessRecord } from './controlplane/process.js';
import { containerdStatus, startContainerd, stopContainerd, type ContainerdRecord } from './node/containerd.js';
import { ensureCniBinDir } from './node/cni.js';
import { buildImages } from './node/images.js';
import { assertKubeletPortsFree, kubeletStatus, nodeIPv4, startKubelet, stopKubelet, waitNode, type KubeletRecord } from './node/kubelet.js';
import { type NodeLayout, nodeLayout } from './node/layout.js';

interface ClusterContext {
  stateDir: string;
  binDir: string;
  kubeconfigPath: string;
  // Where components keep their files; removed by `down`.
  clusterDir: string;
  // The one node: this host.
  node: NodeLayout;
}

interface ComponentStatus {
  healthy: boolean;
  lines: string[];
}

interface ClusterComponent<State> {
  name: string;
  up(ctx: ClusterContext): Promise<State>;
  status(ctx: ClusterContext, state: State): Promise<ComponentStatus>;
  down(ctx: ClusterContext, state: State): Promise<void>;
  describe(ctx: ClusterContext, state: State): string;
  // For a component `up` never recorded (killed while starting it): removes what it may have left.
  sweep?(ctx: ClusterContext): Promise<void>;
}

interface ClusterState {
  components: Record<string, unknown>;
  // Paths `up` created outside clusterDir, removed by `down`.
  created: string[];
}

function processLines(processes: ProcessRecord[]): string[] {
  return processes.map((p) => `${p.name}: ${isRunning(p) ? 'running' : 'NOT running'} (pid ${p.pid}, log ${p.logPath})`);
}

const controlPlane: ClusterComponent<ControlPlaneRecord> = {
  name: 'control-plane',
  async up(ctx) {
    const cp = await startControlPlane({
      binDir: ctx.binDir,
      workDir: path.join(ctx.clusterDir, 'control-plane'),
      kubeconfigPath: ctx.kubeconfigPath,
      detached: true,
    });
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
    `control plane: kube-apiserver ${record.serverUrl} (pid ${record.apiserver?.process.pid}), etcd ${record.etcd?.clientUrl} (pid ${record.etcd?.process.pid}), ${record.crds.length} CRDs, ready in ${(record.startMs / 1000).toFixed(1)}s`,
};

const kubeControllers: ClusterComponent<KubeControllersRecord> = {
  name: 'kube-controllers',
  async up(ctx) {
    const cp = (await readState(ctx))?.components['control-plane'] as ControlPlaneRecord | undefined;
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
    describe: (_ctx, record) => `${name}: pid ${record.process.pid}, health ${record.healthUrl}, metrics ${record.metricsUrl}, log ${record.process.logPath}`,
  };
}

const logPath = (ctx: ClusterContext, name: string): string => path.join(ctx.stateDir, 'logs', `${name}-${ctx.node.name}.log`);

const containerd: ClusterComponent<ContainerdRecord> = {
  name: 'containerd',
  async up(ctx) {
    await mkdir(path.join(ctx.stateDir, 'logs'), { recursive: true });
    await ensureCniBinDir(ctx.node.cniBinDir);
    return startContainerd(ctx.node, logPath(ctx, 'containerd'), await buildImages());
  },
  status: (ctx, record) => containerdStatus(ctx.node, record),
  async down(ctx, record) {
    await stopContainerd(ctx.node, record);
    await rm(record.process.logPath, { force: true });
  },
  describe: (ctx, record) => `containerd: pid ${record.process.pid}, socket ${ctx.node.containerdSocket}, log ${record.process.logPath}`,
  async sweep(ctx) {
    await stopContainerd(ctx.node, undefined);
    await rm(logPath(ctx, 'containerd'), { force: true });
  },
};

const crictlPath = (ctx: ClusterContext): string => path.join(ctx.binDir, 'crictl');

const kubelet: ClusterComponent<KubeletRecord> = {
  name: 'kubelet',
  async up(ctx) {
    return startKubelet(ctx.node, {
      binary: path.join(ctx.binDir, 'kubelet'),
      kubeConfig: loadKubeConfig(ctx.kubeconfigPath),
      kubeconfigPath: ctx.kubeconfigPath,
      nodeIP: await nodeIPv4(),
      logPath: logPath(ctx, 'kubelet'),
    });
  },
  status: (ctx, record) => kubeletStatus(loadKubeConfig(ctx.kubeconfigPath), ctx.node, record),
  async down(ctx, record) {
    await stopKubelet(ctx.node, record, crictlPath(ctx));
    if (record.process) await rm(record.process.logPath, { force: true });
  },
  describe: (ctx, record) => `kubelet: node ${ctx.node.name} (${record.nodeIP}), pid ${record.process?.pid}, log ${record.process?.logPath}`,
  async sweep(ctx) {
    await stopKubelet(ctx.node, undefined, crictlPath(ctx));
    await rm(logPath(ctx, 'kubelet'), { force: true });
  },
};

const agent: ClusterComponent<DaemonRecord> = {
  name: 'agent',
  async up(ctx) {
    const record = await startHostAgent(ctx, ctx.node);
    // The agent writes the CNI config once ready; only then does kubelet report the node Ready.
    await waitNode(loadKubeConfig(ctx.kubeconfigPath), ctx.node.name, 'ready').catch(async (err: unknown) => {
      await stopDaemon(record);
      throw err;
    });
    return record;
  },
  async status(ctx, record) {
    const s = await daemonStatus('agent', record);
    const socket = await agentSocketStatus(ctx.node.agentSocket);
    return { healthy: s.healthy && socket.healthy, lines: [...s.lines, socket.line] };
  },
  down: (_ctx, record) => stopDaemon(record),
  sweep: (ctx) => sweepHostAgent(ctx, ctx.node),
  describe: (ctx, record) => `agent: pid ${record.process.pid}, API ${ctx.node.agentSocket}, health ${record.healthUrl}, metrics ${record.metricsUrl}, log ${record.process.logPath}`,
};

// Each stage starts its components at once; a stage begins when the one before is up. The
// operator assigns the podCIDR the agent waits for; the agent comes last, after kubelet
// registered the Node it belongs to (the operator collects CiliumNodes of unknown Nodes).
const stages = [
  [controlPlane],
  [kubeControllers, daemonComponent('operator', startOperator, sweepOperator), containerd],
  [kubelet],
  [agent],
] as ClusterComponent<unknown>[][];
const components = stages.flat();
// kubelet goes first so it recreates no pod, and removes the pods while containerd and the
// agent (the CNI plugin's other half) still answer.
const downOrder = ['kubelet', 'containerd', 'agent', 'operator', 'kube-controllers', 'control-plane'];

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
  const result: ComponentStatus = { healthy: true, lines: [] };
  for (const component of components) {
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

async function down(ctx: ClusterContext, state: ClusterState): Promise<void> {
  const errors: string[] = [];
  for (const name of downOrder) {
    const component = components.find((c) => c.name === name) as ClusterComponent<unknown>;
    const componentState = state.components[component.name];
    const t0 = Date.now();
    try {
      if (componentState !== undefined) await component.down(ctx, componentState);
      else await component.sweep?.(ctx);
    } catch (err) {
      errors.push(`${component.name}: ${(err as Error).message}`);
    }
    if (componentState !== undefined) console.log(`stopped ${component.name} in ${seconds(t0)}`);
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
  for (const component of components) {
    const componentState = state.components[component.name];
    if (componentState !== undefined) console.log(component.describe(ctx, componentState));
  }
  console.log(`
use it:
  export KUBECONFIG=${ctx.kubeconfigPath}
  ${kubectlPath} get crds
stop it:
  npm run cluster -- down`);
}

async function up(ctx: ClusterContext): Promise<void> {
  const existing = await readState(ctx);
  if (existing !== undefined) {
    const status = await clusterStatus(ctx, existing);
    if (status.healthy) {
      console.log('cluster is already up');
      printUsage(ctx, existing, path.join(ctx.stateDir, 'bin', 'kubectl'));
      return;
    }
    console.log(`cluster state found but not healthy; stopping what is left first:\n  ${status.lines.join('\n  ')}`);
    await down(ctx, existing);
  }
  ensureTools(ctx.binDir);
  await assertKubeletPortsFree();
  const state: ClusterState = { components: {}, created: [] };
  await writeState(ctx, state);
  const started = Date.now();
  let written = Promise.resolve();
  for (const stage of stages) {
    const results = await Promise.allSettled(
      stage.map(async (component) => {
        const t0 = Date.now();
        console.log(`starting ${component.name}...`);
        const componentState = await component.up(ctx);
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
  console.log(`all up in ${seconds(started)}`);
  const kubectlPath = await ensureKubectl(ctx, state);
  await writeState(ctx, state);
  console.log('cluster is up');
  printUsage(ctx, state, kubectlPath);
}

// Exit codes follow LSB `status`: 0 running, 1 partly running or unhealthy, 3 not running.
async function status(ctx: ClusterContext): Promise<number> {
  const state = await readState(ctx);
  if (state === undefined) {
    console.log(`cluster is not running (no state in ${ctx.clusterDir})`);
    return 3;
  }
  const result = await clusterStatus(ctx, state);
  console.log(result.healthy ? 'cluster is up' : 'cluster is NOT healthy');
  for (const line of result.lines) console.log(`  ${line}`);
  return result.healthy ? 0 : 1;
}

function contextFrom(opts: { stateDir: string; binDir: string }): ClusterContext {
  const stateDir = path.resolve(opts.stateDir);
  return {
    stateDir,
    binDir: path.resolve(opts.binDir),
    kubeconfigPath: path.join(stateDir, 'kubeconfig'),
    clusterDir: path.join(stateDir, 'cluster'),
    node: nodeLayout(stateDir, hostNodeName()),
  };
}

const program = new Command('cluster')
  .description('the local cilium-ts cluster (control plane with the cilium.io CRDs, cilium-operator, this host as a node with containerd, kubelet and cilium-agent), run in the background')
  .option('--state-dir <dir>', 'where the kubeconfig, pids, logs and data live (env CILIUM_TS_STATE_DIR)', process.env.CILIUM_TS_STATE_DIR ?? path.join(repoRoot, '.local'))
  .option('--bin-dir <dir>', 'where etcd, the Kubernetes binaries and crictl are (env CILIUM_TS_BIN_DIR)', defaultBinDir());

program.command('up').description('start the cluster unless it is up').action(async () => up(contextFrom(program.opts())));
program
  .command('status')
  .description('say what runs; exit 0 up, 1 unhealthy, 3 down')
  .action(async () => {
    process.exitCode = await status(contextFrom(program.opts()));
  });
program
  .command('down')
  .description('stop the cluster and remove what `up` created')
  .action(async () => {
    const ctx = contextFrom(program.opts());
    const state = await readState(ctx);
    if (state === undefined) {
      console.log(`cluster is not running (no state in ${ctx.clusterDir})`);
      return;
    }
    await down(ctx, state);
    console.log('cluster is down');
  });

try {
  await program.parseAsync();
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}
