// `npm run cluster -- up|down|status`: the local cluster in the background. Each part of the
// cluster is a component; `up` starts them in order and records each one's state as soon as it
// runs, so `down` (in reverse order) can stop whatever a failed `up` left behind.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { missingBinaries, serverBinaryPaths } from './controlplane/binaries.js';
import {
  loadKubeConfig,
  processesOf,
  startControlPlane,
  stopControlPlane,
  type ControlPlaneRecord,
} from './controlplane/controlplane.js';
import { daemonStatus, startHostAgent, startOperator, stopDaemon, type DaemonRecord } from './cluster-daemons.js';
import { apiRequest } from './controlplane/http.js';
import { defaultBinDir, repoRoot } from './controlplane/paths.js';
import { isRunning, pidsMentioning, stopPid, type ProcessRecord } from './controlplane/process.js';

interface ClusterContext {
  stateDir: string;
  binDir: string;
  kubeconfigPath: string;
  // Where components keep their files; removed by `down`.
  clusterDir: string;
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

function daemonComponent(name: string, start: (ctx: ClusterContext) => Promise<DaemonRecord>): ClusterComponent<DaemonRecord> {
  return {
    name,
    up: start,
    status: (_ctx, record) => daemonStatus(name, record),
    down: (_ctx, record) => stopDaemon(record),
    describe: (_ctx, record) => `${name}: pid ${record.process.pid}, health ${record.healthUrl}, metrics ${record.metricsUrl}, log ${record.process.logPath}`,
  };
}

// The operator assigns the podCIDR the host agent waits for, so it starts first.
const components = [controlPlane, daemonComponent('operator', startOperator), daemonComponent('agent', startHostAgent)] as ClusterComponent<unknown>[];

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
  for (const component of [...components].reverse()) {
    const componentState = state.components[component.name];
    if (componentState === undefined) continue;
    try {
      await component.down(ctx, componentState);
    } catch (err) {
      errors.push(`${component.name}: ${(err as Error).message}`);
    }
  }
  // An `up` killed before it recorded a component leaves processes only its command line names.
  for (const pid of pidsMentioning(ctx.clusterDir, serverBinaryPaths(ctx.binDir))) {
    try {
      await stopPid(pid, `unrecorded process ${pid} using ${ctx.clusterDir}`);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length > 0) throw new Error(`cluster down: ${errors.join('; ')}; state kept in ${statePath(ctx)}`);
  for (const p of state.created) await rm(p, { recursive: true, force: true });
  await rm(ctx.clusterDir, { recursive: true, force: true });
}

function ensureTools(binDir: string): void {
  if (missingBinaries(binDir).length === 0) return;
  console.log(`building the missing tools (${missingBinaries(binDir).join(', ')}) with hack/install-tools.sh`);
  const result = spawnSync('bash', [path.join(repoRoot, 'hack', 'install-tools.sh'), 'tools'], { stdio: 'inherit' });
  const missing = missingBinaries(binDir);
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
  const state: ClusterState = { components: {}, created: [] };
  await writeState(ctx, state);
  for (const component of components) {
    console.log(`starting ${component.name}...`);
    state.components[component.name] = await component.up(ctx);
    await writeState(ctx, state);
  }
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
  };
}

const program = new Command('cluster')
  .description('the local cilium-ts cluster (etcd + kube-apiserver with the cilium.io CRDs), run in the background')
  .option('--state-dir <dir>', 'where the kubeconfig, pids, logs and data live (env CILIUM_TS_STATE_DIR)', process.env.CILIUM_TS_STATE_DIR ?? path.join(repoRoot, '.local'))
  .option('--bin-dir <dir>', 'where etcd, kube-apiserver and kubectl are (env CILIUM_TS_BIN_DIR)', defaultBinDir());

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
