// The operator and the host node's agent as components of `npm run cluster`: each runs its cmd/
// entry point under tsx in the background, logs to .local/logs/, and is healthy when its
// /healthz answers 200. The agent's pins, state and API socket live under paths `down` removes.
import { readFileSync } from 'node:fs';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { BPFFS_ROOT } from '../datapath/linux/paths.js';
import { freePorts } from './controlplane/ports.js';
import { repoRoot } from './controlplane/paths.js';
import { isRunning, logTail, pidsMentioning, startProcess, stopPid, stopProcess, type ProcessRecord } from './controlplane/process.js';
import { httpRequest } from './controlplane/http.js';
import { type NodeLayout, stateDirTag } from './node/layout.js';

export interface DaemonContext {
  stateDir: string;
  kubeconfigPath: string;
}

const logsDir = (ctx: DaemonContext): string => path.join(ctx.stateDir, 'logs');

export interface DaemonRecord {
  process: ProcessRecord;
  healthUrl: string;
  metricsUrl: string;
  /** What the daemon owns (its state, pins and log), removed by `down` after it stopped. */
  dirs: string[];
  /** Shared parents, removed once the last daemon's entries are gone from them. */
  parents: string[];
}

const READY_TIMEOUT_MS = 60_000;

/**
 * Where this cluster's nodes pin their maps: one directory per state dir, so two local clusters
 * (a user's and a test's) never share pins, and `down` can leave bpffs as it found it.
 */
function pinParent(stateDir: string): string {
  return path.join(BPFFS_ROOT, `cilium-ts-${stateDirTag(stateDir)}`);
}
const POLL_MS = 250;

/** The node name the local cluster's host agent registers as. */
export function hostNodeName(): string {
  return hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-');
}

async function healthStatus(url: string): Promise<{ status: number; body: string }> {
  const res = await httpRequest(url);
  return { status: res.status, body: res.body.trim().slice(0, 300) };
}

async function waitHealthy(name: string, record: ProcessRecord, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isRunning(record)) throw new Error(`${name} exited during start; log ${record.logPath}:\n${logTail(record.logPath)}`);
    try {
      const res = await healthStatus(url);
      if (res.status === 200) return;
      last = `HTTP ${res.status} ${res.body}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  await stopProcess(record);
  throw new Error(`${name} not healthy within ${READY_TIMEOUT_MS / 1000}s (${url}: ${last}); log ${record.logPath}:\n${logTail(record.logPath)}`);
}

async function startDaemon(
  ctx: DaemonContext,
  name: string,
  entry: string,
  args: string[],
  healthUrl: string,
  metricsUrl: string,
  dirs: string[],
  parents: string[],
): Promise<DaemonRecord> {
  const logDir = logsDir(ctx);
  await mkdir(logDir, { recursive: true });
  const record = await startProcess({
    name,
    binary: process.execPath,
    args: ['--import', 'tsx', path.join(repoRoot, 'cmd', entry), ...args],
    logPath: path.join(logDir, `${name}.log`),
    detached: true,
  });
  await waitHealthy(name, record, healthUrl);
  return { process: record, healthUrl, metricsUrl, dirs: [...dirs, record.logPath], parents: [...parents, logDir] };
}

export async function startOperator(ctx: DaemonContext): Promise<DaemonRecord> {
  const [health, metrics] = await freePorts(2);
  return startDaemon(
    ctx,
    'cilium-operator',
    'cilium-operator.ts',
    [
      '--k8s-kubeconfig-path', ctx.kubeconfigPath,
      '--operator-api-serve-addr', `127.0.0.1:${health}`,
      '--operator-prometheus-serve-addr', `127.0.0.1:${metrics}`,
    ],
    `http://127.0.0.1:${health}/healthz`,
    `http://127.0.0.1:${metrics}/metrics`,
    [],
    [],
  );
}

/** What tools and tests read to find a local node's parts (contracts.md). */
export interface NodeInfo {
  name: string;
  socket: string;
  bpfPinDir: string;
  stateDir: string;
  containerdSocket: string;
  cniConfDir: string;
  cniBinDir: string;
}

export const CILIUM_CONFLIST = '05-cilium.conflist';

/** The host node's agent; kubelet has registered its Node, whose CiliumNode the agent writes. */
export async function startHostAgent(ctx: DaemonContext, layout: NodeLayout): Promise<DaemonRecord> {
  const pinDir = path.join(pinParent(ctx.stateDir), layout.name);
  const hubbleSocket = path.join(layout.dir, 'hubble.sock');
  await mkdir(layout.agentStateDir, { recursive: true });
  const info: NodeInfo = {
    name: layout.name,
    socket: layout.agentSocket,
    bpfPinDir: pinDir,
    stateDir: layout.agentStateDir,
    containerdSocket: layout.containerdSocket,
    cniConfDir: layout.cniConfDir,
    cniBinDir: layout.cniBinDir,
  };
  await writeFile(layout.nodeJson, `${JSON.stringify(info, null, 2)}\n`);
  const [health, metrics] = await freePorts(2);
  return startDaemon(
    ctx,
    `cilium-agent-${layout.name}`,
    'cilium-agent.ts',
    [
      '--node-name', layout.name,
      '--k8s-kubeconfig-path', ctx.kubeconfigPath,
      '--bpf-pin-dir', pinDir,
      '--state-dir', layout.agentStateDir,
      '--socket-path', layout.agentSocket,
      '--write-cni-conf-when-ready', path.join(layout.cniConfDir, CILIUM_CONFLIST),
      '--enable-hubble', 'true',
      '--hubble-socket-path', hubbleSocket,
      '--agent-health-port', String(health),
      '--prometheus-serve-addr', `127.0.0.1:${metrics}`,
    ],
    `http://127.0.0.1:${health}/healthz`,
    `http://127.0.0.1:${metrics}/metrics`,
    [layout.agentStateDir, layout.agentSocket, hubbleSocket, layout.nodeJson, pinDir],
    [layout.dir, path.dirname(layout.dir), pinParent(ctx.stateDir)],
  );
}

export async function daemonStatus(name: string, record: DaemonRecord): Promise<{ healthy: boolean; lines: string[] }> {
  const running = isRunning(record.process);
  const lines = [`${name}: ${running ? 'running' : 'NOT running'} (pid ${record.process.pid}, log ${record.process.logPath})`];
  let healthy = false;
  if (running) {
    try {
      const res = await healthStatus(record.healthUrl);
      healthy = res.status === 200;
      lines.push(`${record.healthUrl}: HTTP ${res.status} ${res.body}`);
    } catch (err) {
      lines.push(`${record.healthUrl}: ${(err as Error).message}`);
    }
  }
  return { healthy, lines };
}

// For a daemon `up` never recorded: its command line names its entry point and a path of this cluster.
async function stopUnrecorded(entry: string, mentioning: string): Promise<void> {
  for (const pid of pidsMentioning(mentioning)) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes(path.join(repoRoot, 'cmd', entry))) await stopPid(pid, `${entry} ${pid} using ${mentioning}`);
  }
}

export async function sweepOperator(ctx: DaemonContext): Promise<void> {
  await stopUnrecorded('cilium-operator.ts', ctx.kubeconfigPath);
  await rm(path.join(logsDir(ctx), 'cilium-operator.log'), { force: true });
}

/** For an agent `up` never recorded: stops it and removes its files. */
export async function sweepHostAgent(ctx: DaemonContext, layout: NodeLayout): Promise<void> {
  await stopUnrecorded('cilium-agent.ts', layout.agentStateDir);
  const pinDir = path.join(pinParent(ctx.stateDir), layout.name);
  const log = path.join(logsDir(ctx), `cilium-agent-${layout.name}.log`);
  for (const p of [layout.agentStateDir, layout.agentSocket, layout.nodeJson, pinDir, log]) await rm(p, { recursive: true, force: true });
  for (const dir of [layout.dir, path.dirname(layout.dir), pinParent(ctx.stateDir)]) await rmdir(dir).catch(() => undefined);
}

/** The agent's REST API on its unix socket: GET /v1/healthz. */
export async function agentSocketStatus(socketPath: string): Promise<{ healthy: boolean; line: string }> {
  try {
    const res = await httpRequest('http://localhost/v1/healthz', { socketPath });
    return { healthy: res.status === 200, line: `${socketPath} GET /v1/healthz: HTTP ${res.status} ${res.body.trim().slice(0, 200)}` };
  } catch (err) {
    return { healthy: false, line: `${socketPath}: ${(err as Error).message}` };
  }
}

export async function stopDaemon(record: DaemonRecord): Promise<void> {
  await stopProcess(record.process);
  for (const dir of record.dirs) await rm(dir, { recursive: true, force: true });
  // A parent stays while another daemon's entries are still in it.
  for (const dir of record.parents) await rmdir(dir).catch(() => undefined);
}
