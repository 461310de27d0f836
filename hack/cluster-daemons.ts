// The operator, each node's agent and the Hubble relay as components of `npm run cluster`: each
// runs its cmd/ entry point under tsx in the background, logs to .local/logs/, and is healthy when
// its /healthz answers 200 (an agent's, asked inside its node's netns where it listens). The
// agent's pins, state and API socket live under paths `down` removes.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { AGENT_OPTIONS } from '../controllers/config/agent.js';
import { BPFFS_ROOT } from '../datapath/linux/paths.js';
import { freePorts } from './controlplane/ports.js';
import { repoRoot } from './controlplane/paths.js';
import { isRunning, logTail, pidsMentioning, startProcess, stopPid, stopProcess, type ProcessRecord } from './controlplane/process.js';
import { httpRequest } from './controlplane/http.js';
import { type NodeLayout, stateDirTag } from './node/layout.js';
import { type EnterCommand, type NodeNamespacesRecord, enterNode, withArgs } from './node/namespaces.js';

export interface DaemonContext {
  stateDir: string;
  kubeconfigPath: string;
}

const logsDir = (ctx: DaemonContext): string => path.join(ctx.stateDir, 'logs');

const run = promisify(execFile);

export interface DaemonRecord {
  process: ProcessRecord;
  /** HTTP URL of its health endpoint, or tcp://host:port when accepting a connection is all it offers. */
  healthUrl: string;
  /** The netns it runs (and its health endpoint listens) in; the root netns when unset. */
  netns?: string;
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


// curl inside the netns: this process cannot open a socket in another network namespace.
async function httpInNetns(netns: string, url: string): Promise<{ status: number; body: string }> {
  try {
    const { stdout } = await run('nsenter', [`--net=${netns}`, 'curl', '-sS', '-m', '2', '-w', '\n%{http_code}', url], { timeout: 5_000 });
    const at = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
  } catch (err) {
    throw new Error(`${url} in ${netns}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err });
  }
}

function tcpAccepts(url: URL): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) }, () => {
      socket.destroy();
      resolve({ status: 200, body: 'accepts connections' });
    });
    socket.once('error', reject);
  });
}

async function healthStatus(url: string, netns: string | undefined): Promise<{ status: number; body: string }> {
  if (url.startsWith('tcp://')) return tcpAccepts(new URL(url));
  const res = netns === undefined ? await httpRequest(url) : await httpInNetns(netns, url);
  return { status: res.status, body: res.body.trim().slice(0, 300) };
}

async function waitHealthy(name: string, record: ProcessRecord, url: string, netns: string | undefined): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isRunning(record)) throw new Error(`${name} exited during start; log ${record.logPath}:\n${logTail(record.logPath)}`);
    try {
      const res = await healthStatus(url, netns);
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

interface DaemonSpec {
  name: string;
  entry: string;
  args: string[];
  healthUrl: string;
  metricsUrl: string;
  /** Runs it in a node's namespaces (whose netns its health endpoint is asked in). */
  node?: { enter: EnterCommand; netns: string };
  dirs: string[];
  parents: string[];
}

async function startDaemon(ctx: DaemonContext, spec: DaemonSpec): Promise<DaemonRecord> {
  const logDir = logsDir(ctx);
  await mkdir(logDir, { recursive: true });
  const tsx = [process.execPath, '--import', 'tsx', path.join(repoRoot, 'cmd', spec.entry), ...spec.args];
  // nsenter execs the command, so the recorded pid is the daemon's.
  const [binary, args] = spec.node === undefined ? [process.execPath, tsx.slice(1)] : withArgs(spec.node.enter, tsx);
  const record = await startProcess({ name: spec.name, binary, args, logPath: path.join(logDir, `${spec.name}.log`), detached: true });
  await waitHealthy(spec.name, record, spec.healthUrl, spec.node?.netns);
  return {
    process: record,
    healthUrl: spec.healthUrl,
    ...(spec.node === undefined ? {} : { netns: spec.node.netns }),
    metricsUrl: spec.metricsUrl,
    dirs: [...spec.dirs, record.logPath],
    parents: [...spec.parents, logDir],
  };
}

export async function startOperator(ctx: DaemonContext): Promise<DaemonRecord> {
  const [health, metrics] = await freePorts(2);
  return startDaemon(ctx, {
    name: 'cilium-operator',
    entry: 'cilium-operator.ts',
    args: [
      '--k8s-kubeconfig-path', ctx.kubeconfigPath,
      '--operator-api-serve-addr', `127.0.0.1:${health}`,
      '--operator-prometheus-serve-addr', `127.0.0.1:${metrics}`,
    ],
    healthUrl: `http://127.0.0.1:${health}/healthz`,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    dirs: [],
    parents: [],
  });
}

export const RELAY_ENTRY = 'hubble-relay.ts';
export const RELAY_ADDRESS = '127.0.0.1:4245';

/** Hubble relay in the root netns, peering through the first node's agent (contracts9 §A). */
export async function startRelay(ctx: DaemonContext, peerService: string): Promise<DaemonRecord> {
  return startDaemon(ctx, {
    name: 'hubble-relay',
    entry: RELAY_ENTRY,
    args: ['--listen-address', RELAY_ADDRESS, '--peer-service', peerService],
    healthUrl: `tcp://${RELAY_ADDRESS}`,
    metricsUrl: '',
    dirs: [],
    parents: [],
  });
}

export async function sweepRelay(ctx: DaemonContext): Promise<void> {
  await stopUnrecorded(RELAY_ENTRY, RELAY_ADDRESS);
  await rm(path.join(logsDir(ctx), 'hubble-relay.log'), { force: true });
}

/** What tools and tests read to find a local node's parts (contracts.md, contracts9 §A). */
export interface NodeInfo {
  name: string;
  /** The node's network namespace (/run/netns/cts-node-<i>) and its address on the underlay. */
  netns: string;
  nodeIP: string;
  socket: string;
  bpfPinDir: string;
  stateDir: string;
  containerdSocket: string;
  cniConfDir: string;
  cniBinDir: string;
}

/** What tools and tests read to find the cluster (contracts9 §A); written by `up`, removed by `down`. */
export interface ClusterInfo {
  nodes: string[];
  routingMode: RoutingMode;
  underlay: { bridge: string; hostIP: string; cidr: string };
  world: { netns: string; ip: string; httpPort: number };
  clusterPodCIDR: string;
  relay: string;
}

export const CILIUM_CONFLIST = '05-cilium.conflist';

export type RoutingMode = 'tunnel' | 'native';

/** How every node's agent routes and masquerades (contracts9 §A). */
export interface AgentNetworkOptions {
  routingMode: 'tunnel' | 'native';
  clusterPodCIDR: string;
}

/**
 * The agent's routing options (contracts9 §A, §C) that this checkout's agent defines: a checkout
 * from before them still starts its one-node-per-netns cluster.
 */
function networkFlags(network: AgentNetworkOptions): string[] {
  const flags: Record<string, string> = {
    'routing-mode': network.routingMode,
    'tunnel-protocol': 'vxlan',
    'tunnel-port': '8472',
    'enable-ipv4-masquerade': 'true',
    'ipv4-native-routing-cidr': network.clusterPodCIDR,
  };
  return Object.entries(flags).flatMap(([name, value]) => (name in AGENT_OPTIONS ? [`--${name}`, value] : []));
}

// Per netns, so every node's agent has the same ones.
const AGENT_HEALTH_PORT = 9879;
const AGENT_METRICS_PORT = 9962;

/** A node's agent in the node's netns; kubelet has registered its Node, whose CiliumNode the agent writes. */
export async function startNodeAgent(ctx: DaemonContext, layout: NodeLayout, node: NodeNamespacesRecord, network: AgentNetworkOptions): Promise<DaemonRecord> {
  const pinDir = path.join(pinParent(ctx.stateDir), layout.name);
  const hubbleSocket = path.join(layout.dir, 'hubble.sock');
  await mkdir(layout.agentStateDir, { recursive: true });
  const info: NodeInfo = {
    name: layout.name,
    netns: node.netns,
    nodeIP: node.nodeIP,
    socket: layout.agentSocket,
    bpfPinDir: pinDir,
    stateDir: layout.agentStateDir,
    containerdSocket: layout.containerdSocket,
    cniConfDir: layout.cniConfDir,
    cniBinDir: layout.cniBinDir,
  };
  await writeFile(layout.nodeJson, `${JSON.stringify(info, null, 2)}\n`);
  return startDaemon(ctx, {
    name: `cilium-agent-${layout.name}`,
    entry: 'cilium-agent.ts',
    node: { enter: enterNode(node), netns: node.netns },
    args: [
      '--node-name', layout.name,
      '--k8s-kubeconfig-path', ctx.kubeconfigPath,
      '--bpf-pin-dir', pinDir,
      '--state-dir', layout.agentStateDir,
      '--socket-path', layout.agentSocket,
      '--write-cni-conf-when-ready', path.join(layout.cniConfDir, CILIUM_CONFLIST),
      '--enable-hubble', 'true',
      '--hubble-socket-path', hubbleSocket,
      // What upstream's Helm examples enable; the metrics listen on <node IP>:9965.
      '--hubble-metrics', 'drop:sourceContext=pod;destinationContext=pod tcp flow port-distribution icmp policy:sourceContext=app|workload-name|pod|reserved-identity;destinationContext=app|workload-name|pod|dns|reserved-identity;labelsContext=source_namespace,destination_namespace',
      '--agent-health-port', String(AGENT_HEALTH_PORT),
      '--prometheus-serve-addr', `${node.nodeIP}:${AGENT_METRICS_PORT}`,
      ...networkFlags(network),
    ],
    healthUrl: `http://127.0.0.1:${AGENT_HEALTH_PORT}/healthz`,
    metricsUrl: `http://${node.nodeIP}:${AGENT_METRICS_PORT}/metrics`,
    dirs: [layout.agentStateDir, layout.agentSocket, hubbleSocket, layout.nodeJson, pinDir],
    parents: [layout.dir, path.dirname(layout.dir), pinParent(ctx.stateDir)],
  });
}

export async function daemonStatus(name: string, record: DaemonRecord): Promise<{ healthy: boolean; lines: string[] }> {
  const running = isRunning(record.process);
  const lines = [`${name}: ${running ? 'running' : 'NOT running'} (pid ${record.process.pid}, log ${record.process.logPath})`];
  let healthy = false;
  if (running) {
    try {
      const res = await healthStatus(record.healthUrl, record.netns);
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
export async function sweepNodeAgent(ctx: DaemonContext, layout: NodeLayout): Promise<void> {
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
