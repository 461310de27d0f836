// One kubelet per node, configured as this host needs (node-facts): cgroup v1 with the cgroupfs
// driver under the node's own cgroup parent, the node's containerd, its root/cert/log dirs under
// the node's dir, and private bind mounts over the two paths kubelet hard-codes, made in the
// node's mount namespace (which it shares with containerd). It runs in the node's netns, serving
// and answering health checks on the node IP. It registers its Node with the taint cilium's
// agent removes once it is ready.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { apiRequest, httpRequest } from '../controlplane/http.js';
import { isRunning, logTail, pidsMentioning, startProcess, stopPid, stopProcess, type ProcessRecord } from '../controlplane/process.js';
import { createCgroupRoot, removeCgroupRoot } from './cgroups.js';
import { readJournal, writeJournal } from './journal.js';
import type { NodeLayout } from './layout.js';
import { type EnterCommand, withArgs } from './namespaces.js';
import { bindMountPrivate } from './mounts.js';
import { restoreSysctls, saveSysctls, type SysctlValues } from './sysctl.js';

const run = promisify(execFile);

export const AGENT_NOT_READY_TAINT = { key: 'node.cilium.io/agent-not-ready', value: 'true', effect: 'NoExecute' } as const;
export const KUBELET_SYSCTLS = ['vm.overcommit_memory', 'kernel.panic', 'kernel.panic_on_oops'] as const;
// Paths kubelet uses whatever --root-dir says.
const HARD_CODED = { devicePlugins: '/var/lib/kubelet/device-plugins', containerLogs: '/var/log/containers' } as const;
const HEALTHZ_PORT = 10248;
const healthzUrl = (nodeIP: string): string => `http://${nodeIP}:${HEALTHZ_PORT}/healthz`;
const READY_TIMEOUT_MS = 60_000;
export const MAX_PODS = 250;

export interface KubeletRecord {
  process?: ProcessRecord;
  nodeIP: string;
  sysctls: SysctlValues;
  /** Directories created for the hard-coded paths (the top-most new one of each), removed by down. */
  created: string[];
}

export function kubeletConfig(layout: NodeLayout, nodeIP: string): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: layout.cgroupRoot,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: [],
    containerRuntimeEndpoint: `unix://${layout.containerdSocket}`,
    address: nodeIP,
    healthzBindAddress: nodeIP,
    readOnlyPort: 0,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    failSwapOn: false,
    makeIPTablesUtilChains: false,
    podLogsDir: layout.podLogsDir,
    volumePluginDir: layout.volumePluginDir,
    maxPods: MAX_PODS,
    registerWithTaints: [AGENT_NOT_READY_TAINT],
    // The images cannot be pulled again (no registry): never garbage-collect them, never evict.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '1%', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    resolvConf: '/etc/resolv.conf',
  });
}

/** The top-most directory `mkdir -p dir` would create. */
function topMissing(dir: string): string | undefined {
  let top: string | undefined;
  for (let d = dir; !existsSync(d); d = path.dirname(d)) top = d;
  return top;
}

async function mountHardCodedPaths(layout: NodeLayout, record: KubeletRecord, enter: EnterCommand): Promise<void> {
  for (const [source, target] of [
    [layout.devicePluginsDir, HARD_CODED.devicePlugins],
    [layout.containerLogsDir, HARD_CODED.containerLogs],
  ] as const) {
    await mkdir(source, { recursive: true });
    const top = topMissing(target);
    if (top !== undefined) {
      record.created.push(top);
      await writeJournal(layout.kubeletJournal, record);
    }
    await mkdir(target, { recursive: true });
    await bindMountPrivate(source, target, enter);
  }
}

async function waitHealthy(record: ProcessRecord, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isRunning(record)) throw new Error(`kubelet exited during start; log ${record.logPath}:\n${logTail(record.logPath)}`);
    try {
      const res = await httpRequest(url);
      if (res.status === 200) return;
      last = `HTTP ${res.status} ${res.body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`kubelet not healthy within ${READY_TIMEOUT_MS / 1000}s (${url}: ${last}); log ${record.logPath}:\n${logTail(record.logPath)}`);
}

export interface KubeletOptions {
  binary: string;
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  nodeIP: string;
  logPath: string;
  /** The command prefix that enters the node's namespaces (namespaces.ts). */
  enter: EnterCommand;
}

export async function startKubelet(layout: NodeLayout, opts: KubeletOptions): Promise<KubeletRecord> {
  const record: KubeletRecord = { nodeIP: opts.nodeIP, sysctls: await saveSysctls(KUBELET_SYSCTLS), created: [] };
  try {
    await writeJournal(layout.kubeletJournal, record);
    await createCgroupRoot(layout.cgroupRoot);
    for (const dir of [layout.kubeletRootDir, layout.kubeletCertDir, layout.podLogsDir, layout.volumePluginDir]) await mkdir(dir, { recursive: true });
    await mountHardCodedPaths(layout, record, opts.enter);
    await writeFile(layout.kubeletConfig, kubeletConfig(layout, opts.nodeIP));
    const [binary, args] = withArgs(opts.enter, [
      opts.binary,
      `--config=${layout.kubeletConfig}`,
      `--kubeconfig=${opts.kubeconfigPath}`,
      `--root-dir=${layout.kubeletRootDir}`,
      `--cert-dir=${layout.kubeletCertDir}`,
      `--hostname-override=${layout.name}`,
      `--node-ip=${opts.nodeIP}`,
    ]);
    record.process = await startProcess({ name: `kubelet-${layout.name}`, binary, args, logPath: opts.logPath, detached: true });
    await writeJournal(layout.kubeletJournal, record);
    await waitHealthy(record.process, healthzUrl(opts.nodeIP));
    // The agent's CiliumNode needs its Node: the operator collects CiliumNodes of unknown nodes.
    await waitNode(opts.kubeConfig, layout.name, 'registered');
    return record;
  } catch (err) {
    const stopError = await stopKubelet(layout, record, undefined).then(
      () => '',
      (e: unknown) => `\n(and cleaning up failed: ${(e as Error).message})`,
    );
    throw new Error(`${(err as Error).message}${stopError}`, { cause: err });
  }
}

interface NodeCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export async function nodeReadiness(kubeConfig: KubeConfig, node: string): Promise<{ registered: boolean; ready: boolean; detail: string }> {
  const res = await apiRequest(kubeConfig, `/api/v1/nodes/${node}`);
  if (res.status === 404) return { registered: false, ready: false, detail: 'Node not registered' };
  if (res.status !== 200) return { registered: false, ready: false, detail: `GET Node ${node}: HTTP ${res.status} ${res.body.slice(0, 200)}` };
  const obj = JSON.parse(res.body) as { status?: { conditions?: NodeCondition[] }; spec?: { taints?: { key: string }[] } };
  const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
  const taints = (obj.spec?.taints ?? []).map((t) => t.key);
  const detail = `Ready=${ready?.status ?? 'unknown'}${ready?.reason ? ` (${ready.reason}${ready.status === 'True' ? '' : `: ${ready.message ?? ''}`})` : ''}, taints [${taints.join(', ')}]`;
  return { registered: true, ready: ready?.status === 'True', detail };
}

/** Waits until kubelet registered the Node (`until: 'registered'`) or reports it Ready. */
export async function waitNode(kubeConfig: KubeConfig, node: string, until: 'registered' | 'ready', timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not asked yet';
  while (Date.now() < deadline) {
    try {
      const r = await nodeReadiness(kubeConfig, node);
      if (until === 'registered' ? r.registered : r.ready) return;
      last = r.detail;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`Node ${node} not ${until} within ${timeoutMs / 1000}s (${last})`);
}

export async function kubeletStatus(kubeConfig: KubeConfig, layout: NodeLayout, record: KubeletRecord): Promise<{ healthy: boolean; lines: string[] }> {
  const running = record.process !== undefined && isRunning(record.process);
  const lines = [`kubelet: ${running ? 'running' : 'NOT running'} (pid ${record.process?.pid}, log ${record.process?.logPath})`];
  let healthy = running;
  try {
    const r = await nodeReadiness(kubeConfig, layout.name);
    lines.push(`Node ${layout.name}: ${r.detail}`);
    healthy &&= r.ready;
  } catch (err) {
    lines.push(`Node ${layout.name}: ${(err as Error).message}`);
    healthy = false;
  }
  return { healthy, lines };
}

/**
 * Removes every pod sandbox while containerd and the CNI plugin still run, so CNI DEL runs for
 * each. A containerd that is gone cannot: its pods are then only killed (cgroups) and their
 * netns unmounted, which the caller does anyway, so this warns instead of failing the teardown.
 */
async function removePods(layout: NodeLayout, crictl: string): Promise<void> {
  if (!existsSync(layout.containerdSocket)) return;
  try {
    await run(crictl, ['--runtime-endpoint', `unix://${layout.containerdSocket}`, '--timeout', '20s', 'rmp', '--all', '--force'], { timeout: 60_000 });
  } catch (err) {
    const why = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    console.error(`warning: crictl rmp --all --force on ${layout.containerdSocket} failed, so no CNI DEL ran for the pods left: ${why}`);
  }
}

/**
 * Stops kubelet first so it recreates nothing, removes the pods through containerd (crictl given),
 * kills what still runs in the node's cgroups and puts the sysctls back. kubelet's volumes and our
 * bind mounts live in the node's mount namespace and go with it (namespaces.ts).
 */
export async function stopKubelet(layout: NodeLayout, record: KubeletRecord | undefined, crictl: string | undefined): Promise<void> {
  const errors: string[] = [];
  const attempt = async (what: () => Promise<unknown>): Promise<void> => {
    try {
      await what();
    } catch (err) {
      errors.push((err as Error).message);
    }
  };
  record ??= await readJournal<KubeletRecord>(layout.kubeletJournal);
  if (record?.process !== undefined) await attempt(() => stopProcess(record.process as ProcessRecord));
  for (const pid of pidsMentioning(layout.kubeletConfig)) await attempt(() => stopPid(pid, `kubelet ${pid} of ${layout.kubeletConfig}`));
  if (crictl !== undefined) await attempt(() => removePods(layout, crictl));
  await attempt(() => removeCgroupRoot(layout.cgroupRoot));
  if (record !== undefined) {
    await attempt(() => restoreSysctls(record.sysctls));
    for (const dir of record.created) await attempt(() => rm(dir, { recursive: true, force: true }));
  }
  if (errors.length > 0) throw new Error(`kubelet of ${layout.name}: ${errors.join('; ')}`);
  await rm(layout.kubeletDir, { recursive: true, force: true });
}
