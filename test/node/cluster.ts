// The node tier's way to the real local cluster (`npm run cluster -- up`: control plane, and nodes
// in their own netns with kubelet, containerd, agent, cilium-cni): a test run uses the cluster
// that is up, or starts one and takes it down again at the end. Only a cluster this process
// started is ever taken down. Tests of one node use the first (`node`) and pin their pods to it.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../../controllers/agent/api/client.js';
import type { ClusterInfo, NodeInfo } from '../../hack/cluster-daemons.js';
import { repoRoot } from '../../hack/controlplane/paths.js';
import { runWithExitCode, type CommandResult } from '../envtest/command.js';

/** Preloaded on every node of the local cluster (issue 8 §1). */
export const TESTBOX_IMAGE = 'localhost/cilium-ts/testbox:v1';
const STATUS_UP = 0;
const STATUS_DOWN = 3;

export interface LocalCluster {
  stateDir: string;
  kubeconfigPath: string;
  /** The first node, where single-node tests run their pods. */
  node: NodeInfo;
  agent: AgentClient;
  /** This process ran `up`, so its `down` is ours to run. */
  startedHere: boolean;
}

/** Polls `check` until it gives a value; rejects naming `what` (and the last thing seen) after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = `; last error: ${(err as Error).message}`;
    }
    if (Date.now() >= deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}${last}`);
    await sleep(intervalMs);
  }
}

export function localStateDir(): string {
  return path.resolve(process.env.CILIUM_TS_STATE_DIR ?? path.join(repoRoot, '.local'));
}

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

/** The cluster's cluster.json (contracts9 §A), or undefined when no cluster is up. */
export function readClusterInfo(stateDir = localStateDir()): Promise<ClusterInfo | undefined> {
  return readJson<ClusterInfo>(path.join(stateDir, 'cluster.json'));
}

/** A node's node.json (the first node's when unnamed), or undefined when no cluster wrote one. */
export async function readNodeInfo(stateDir = localStateDir(), name?: string): Promise<NodeInfo | undefined> {
  const node = name ?? (await readClusterInfo(stateDir))?.nodes[0];
  return node === undefined ? undefined : readJson<NodeInfo>(path.join(stateDir, 'nodes', node, 'node.json'));
}

/** `npm run cluster -- <args>` without npm's start-up cost. */
export function clusterCommand(args: string[]): Promise<CommandResult> {
  return runWithExitCode(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'hack', 'cluster.ts'), ...args], { cwd: repoRoot });
}

function failure(what: string, r: CommandResult): Error {
  return new Error(`${what}: exit ${r.code}\n${(r.stdout + r.stderr).trim().split('\n').slice(-30).join('\n')}`);
}

/** The cluster that is up, or a new one started with `npm run cluster -- up`. */
export async function useLocalCluster(): Promise<LocalCluster> {
  const status = await clusterCommand(['status']);
  let startedHere = false;
  if (status.code === STATUS_DOWN) {
    const up = await runWithExitCode('npm', ['run', '--silent', 'cluster', '--', 'up'], { cwd: repoRoot });
    startedHere = true;
    if (up.code !== 0) {
      await stopLocalCluster({ startedHere }).catch(() => undefined);
      throw failure('npm run cluster -- up', up);
    }
  } else if (status.code !== STATUS_UP) {
    // Someone else's cluster, half up or failing: not ours to repair or take down.
    throw failure('the local cluster is neither up nor down (npm run cluster -- status)', status);
  }
  const dir = localStateDir();
  const node = await readNodeInfo(dir);
  if (node === undefined) throw new Error(`the cluster is up but wrote no cluster.json naming a node with a node.json in ${dir}`);
  const name = node.name;
  const cluster: LocalCluster = { stateDir: dir, kubeconfigPath: path.join(dir, 'kubeconfig'), node, agent: new AgentClient({ socketPath: node.socket }), startedHere };
  const ready = await kubectl(cluster, ['wait', '--for=condition=Ready', `node/${name}`, '--timeout=180s']);
  if (ready.code !== 0) throw failure(`node ${name} Ready`, ready);
  return cluster;
}

/** `down`, only when this process started the cluster. */
export async function stopLocalCluster(cluster: Pick<LocalCluster, 'startedHere'> | undefined): Promise<void> {
  if (!cluster?.startedHere) return;
  const down = await clusterCommand(['down']);
  if (down.code !== 0) throw failure('npm run cluster -- down', down);
}

export function kubectl(cluster: Pick<LocalCluster, 'kubeconfigPath'>, args: string[], opts: { stdin?: string } = {}): Promise<CommandResult> {
  return runWithExitCode(path.join(repoRoot, '.local', 'bin', 'kubectl'), ['--kubeconfig', cluster.kubeconfigPath, ...args], opts);
}

/** kubectl's stdout; a non-zero exit is an error naming the command and what kubectl said. */
export async function kubectlOk(cluster: Pick<LocalCluster, 'kubeconfigPath'>, args: string[], opts: { stdin?: string } = {}): Promise<string> {
  const r = await kubectl(cluster, args, opts);
  if (r.code !== 0) throw failure(`kubectl ${args.join(' ')}`, r);
  return r.stdout;
}

/** kubectl's answer with `-o json` (put before a `--` that starts a container command). */
export async function kubectlJson<T>(cluster: LocalCluster, args: string[]): Promise<T> {
  const dashes = args.indexOf('--');
  const at = dashes < 0 ? args.length : dashes;
  return JSON.parse(await kubectlOk(cluster, [...args.slice(0, at), '-o', 'json', ...args.slice(at)])) as T;
}

/** A namespace for one test file; cleanup deletes it with everything in it, and its identities. */
export async function nodeTestNamespace(cluster: LocalCluster, prefix: string): Promise<{ name: string; cleanup(): Promise<void> }> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await kubectlOk(cluster, ['create', 'namespace', name]);
  await kubectlOk(cluster, ['label', 'namespace', name, 'cilium-ts.io/test=true']);
  return {
    name,
    async cleanup() {
      await kubectlOk(cluster, ['delete', 'namespace', name, '--ignore-not-found', '--wait=true', '--timeout=300s']);
      // Identities are cluster-scoped and otherwise wait for the operator's GC.
      await kubectlOk(cluster, ['delete', 'ciliumidentities', '-l', `io.kubernetes.pod.namespace=${name}`, '--ignore-not-found']);
    },
  };
}

export interface TestboxDeployment {
  name: string;
  replicas: number;
  /** Extra pod labels (app=<name> is always set). */
  labels?: Record<string, string>;
  /** An HTTP readiness probe on :8080 every second. */
  readinessProbe?: boolean;
  /** The node its pods run on (a nodeSelector on kubernetes.io/hostname). */
  node?: string;
}

// httpd as PID 1 ignores SIGTERM; under sh with a trap a pod goes at once.
export const TESTBOX_HTTPD = 'httpd -f -p 8080 -h /var/www & pid=$!; trap "kill $pid; exit 0" TERM INT; wait';

/** `kubectl create deployment` of the test image serving HTTP on 8080, with a 1 s grace period. */
export async function createTestboxDeployment(cluster: LocalCluster, namespace: string, d: TestboxDeployment): Promise<void> {
  const manifest = await kubectlJson<DeploymentManifest>(cluster, [
    'create', 'deployment', d.name, '-n', namespace, `--image=${TESTBOX_IMAGE}`, `--replicas=${d.replicas}`, '--port=8080', '--dry-run=client', '--', 'sh', '-c', TESTBOX_HTTPD,
  ]);
  const pod = manifest.spec.template;
  pod.metadata.labels = { ...pod.metadata.labels, ...d.labels };
  pod.spec.terminationGracePeriodSeconds = 1;
  if (d.node !== undefined) pod.spec.nodeSelector = { 'kubernetes.io/hostname': d.node };
  if (d.readinessProbe) {
    const container = pod.spec.containers[0] as Record<string, unknown>;
    container.readinessProbe = { httpGet: { path: '/', port: 8080 }, periodSeconds: 1, failureThreshold: 1, timeoutSeconds: 1 };
  }
  await kubectlOk(cluster, ['apply', '-n', namespace, '-f', '-'], { stdin: JSON.stringify(manifest) });
}

interface DeploymentManifest {
  spec: {
    template: { metadata: { labels?: Record<string, string> }; spec: { terminationGracePeriodSeconds?: number; nodeSelector?: Record<string, string>; containers: object[] } };
  };
}

export interface PodView {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export async function podsOf(cluster: LocalCluster, namespace: string, selector: string): Promise<PodView[]> {
  return (await kubectlJson<{ items: PodView[] }>(cluster, ['get', 'pods', '-n', namespace, '-l', selector])).items;
}

export function isReady(pod: PodView): boolean {
  return pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** `wget` from inside `pod`, bounded by `timeout` (busybox `wget -T` segfaults here). */
export async function httpFromPod(cluster: LocalCluster, namespace: string, pod: string, url: string, seconds = 5): Promise<CommandResult> {
  return kubectl(cluster, ['exec', '-n', namespace, pod, '--', 'timeout', String(seconds), 'wget', '-qO-', url]);
}
