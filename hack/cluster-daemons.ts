// The operator and the host node's agent as components of `npm run cluster`: each runs its cmd/
// entry point under tsx in the background, logs to .local/logs/, and is healthy when its
// /healthz answers 200. The agent's pins and state live under paths `down` removes.
import { createHash } from 'node:crypto';
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { BPFFS_ROOT } from '../datapath/linux/paths.js';
import { loadKubeConfig } from './controlplane/controlplane.js';
import { freePorts } from './controlplane/ports.js';
import { repoRoot } from './controlplane/paths.js';
import { isRunning, logTail, startProcess, stopProcess, type ProcessRecord } from './controlplane/process.js';
import { apiRequest, httpRequest } from './controlplane/http.js';

export interface DaemonContext {
  stateDir: string;
  kubeconfigPath: string;
}

const logsDir = (ctx: DaemonContext): string => path.join(ctx.stateDir, 'logs');
const nodesDir = (ctx: DaemonContext): string => path.join(ctx.stateDir, 'nodes');

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
  return path.join(BPFFS_ROOT, `cilium-ts-${createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 12)}`);
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

/**
 * Registers the host as a core Node, as a kubelet would (the real-node issue brings one): the
 * operator's node GC deletes a CiliumNode whose Node does not exist, as upstream's does.
 */
async function registerHostNode(ctx: DaemonContext, node: string): Promise<void> {
  const body = JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { 'kubernetes.io/hostname': node } } });
  const res = await apiRequest(loadKubeConfig(ctx.kubeconfigPath), '/api/v1/nodes', { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } });
  if (res.status !== 201 && res.status !== 409) throw new Error(`register Node ${node}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
}

export async function startHostAgent(ctx: DaemonContext): Promise<DaemonRecord> {
  const node = hostNodeName();
  await registerHostNode(ctx, node);
  const nodeDir = path.join(nodesDir(ctx), node);
  const pinDir = path.join(pinParent(ctx.stateDir), node);
  const stateDir = path.join(nodeDir, 'state');
  await mkdir(stateDir, { recursive: true });
  const [health, metrics] = await freePorts(2);
  return startDaemon(
    ctx,
    `cilium-agent-${node}`,
    'cilium-agent.ts',
    [
      '--node-name', node,
      '--k8s-kubeconfig-path', ctx.kubeconfigPath,
      '--bpf-pin-dir', pinDir,
      '--state-dir', stateDir,
      '--socket-path', path.join(nodeDir, 'cilium.sock'),
      '--agent-health-port', String(health),
      '--prometheus-serve-addr', `127.0.0.1:${metrics}`,
    ],
    `http://127.0.0.1:${health}/healthz`,
    `http://127.0.0.1:${metrics}/metrics`,
    [nodeDir, pinDir],
    [nodesDir(ctx), pinParent(ctx.stateDir)],
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

export async function stopDaemon(record: DaemonRecord): Promise<void> {
  await stopProcess(record.process);
  for (const dir of record.dirs) await rm(dir, { recursive: true, force: true });
  // A parent stays while another daemon's entries are still in it.
  for (const dir of record.parents) await rmdir(dir).catch(() => undefined);
}
