// One containerd per node with its own root, state, sockets and runc root under the node's dir,
// configured as this host needs (node-facts): cgroupfs, restrict_oom_score_adj (no
// CAP_SYS_RESOURCE), pod netns under the state dir, our pause image as sandbox_image, the CNI
// config dir of the node and the shared CNI bin dir.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { isRunning, logTail, pidsMentioning, startProcess, stopPid, stopProcess, type ProcessRecord } from '../controlplane/process.js';
import { PAUSE_IMAGE, type ImageArchive, importImages } from './images.js';
import { readJournal, writeJournal } from './journal.js';
import type { NodeLayout } from './layout.js';
import { type EnterCommand, withArgs } from './namespaces.js';
import { unmountAll } from './mounts.js';
import { restoreSysctls, saveSysctls, type SysctlValues } from './sysctl.js';

const run = promisify(execFile);

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';
// containerd 1.6 puts every shim socket here whatever its own state dir is.
const SHIM_SOCKET_DIR = '/run/containerd/s';
const CNI_RESULTS_DIR = '/var/lib/cni/results';
const CRI_NAMESPACE = 'k8s.io';
const READY_TIMEOUT_MS = 30_000;

export function containerdConfig(layout: NodeLayout): string {
  const q = (s: string): string => JSON.stringify(s);
  return `version = 2
root = ${q(layout.containerdRoot)}
state = ${q(layout.containerdState)}

[grpc]
  address = ${q(layout.containerdSocket)}
[ttrpc]
  address = ${q(`${layout.containerdSocket}.ttrpc`)}
[debug]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(layout.optDir)}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE)}
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${q(layout.runcRoot)}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(layout.cniBinDir)}
    conf_dir = ${q(layout.cniConfDir)}
    max_conf_num = 1
`;
}

async function ctrVersion(layout: NodeLayout): Promise<string> {
  const { stdout } = await run(CTR, ['-a', layout.containerdSocket, 'version'], { timeout: 5_000 });
  return stdout;
}

async function waitReady(layout: NodeLayout, record: ProcessRecord): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isRunning(record)) throw new Error(`containerd exited during start; log ${record.logPath}:\n${logTail(record.logPath)}`);
    try {
      await ctrVersion(layout);
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`containerd not answering on ${layout.containerdSocket} within ${READY_TIMEOUT_MS / 1000}s (${last}); log ${record.logPath}:\n${logTail(record.logPath)}`);
}

export interface ContainerdRecord {
  process: ProcessRecord;
  /** The CNI plugins turn on forwarding; `down` puts back what the host had. */
  sysctls: SysctlValues;
}

/** `enter` is the command prefix that puts containerd into the node's namespaces (namespaces.ts). */
export async function startContainerd(layout: NodeLayout, logPath: string, images: ImageArchive[], enter: EnterCommand): Promise<ContainerdRecord> {
  const sysctls = await saveSysctls(['net.ipv4.ip_forward']);
  await writeJournal(layout.containerdJournal, { sysctls });
  for (const dir of [layout.containerdRoot, layout.containerdState, layout.runcRoot, layout.optDir, layout.cniConfDir, layout.cniIpamDir]) {
    await mkdir(dir, { recursive: true });
  }
  await writeFile(layout.containerdConfig, containerdConfig(layout));
  const [binary, args] = withArgs(enter, [CONTAINERD, '--config', layout.containerdConfig]);
  const process = await startProcess({ name: `containerd-${layout.name}`, binary, args, logPath, detached: true });
  const record = { process, sysctls };
  try {
    await waitReady(layout, process);
    await importImages(CTR, layout.containerdSocket, images);
    return record;
  } catch (err) {
    const stopError = await stopContainerd(layout, record).then(
      () => '',
      (e: unknown) => `\n(and cleaning up failed: ${(e as Error).message})`,
    );
    throw new Error(`${(err as Error).message}${stopError}`, { cause: err });
  }
}

export async function containerdStatus(layout: NodeLayout, { process }: ContainerdRecord): Promise<{ healthy: boolean; lines: string[] }> {
  const running = isRunning(process);
  const lines = [`containerd: ${running ? 'running' : 'NOT running'} (pid ${process.pid}, socket ${layout.containerdSocket}, log ${process.logPath})`];
  if (!running) return { healthy: false, lines };
  try {
    const server = /Server:\s*\n\s*Version:\s*(\S+)/.exec(await ctrVersion(layout))?.[1] ?? 'unknown';
    lines.push(`ctr version: server ${server}`);
    return { healthy: true, lines };
  } catch (err) {
    lines.push(`ctr version: ${(err as Error).message.split('\n')[0]}`);
    return { healthy: false, lines };
  }
}

/** Sandbox and container ids this containerd knows of, from its state and root dirs. */
function containerIds(layout: NodeLayout): string[] {
  const dirs = [
    path.join(layout.containerdState, 'io.containerd.runtime.v2.task', CRI_NAMESPACE),
    path.join(layout.containerdState, 'io.containerd.grpc.v1.cri', 'sandboxes'),
    path.join(layout.containerdRoot, 'io.containerd.grpc.v1.cri', 'sandboxes'),
    path.join(layout.containerdRoot, 'io.containerd.grpc.v1.cri', 'containers'),
  ];
  const ids = new Set<string>();
  for (const dir of dirs) if (existsSync(dir)) for (const id of readdirSync(dir)) ids.add(id);
  return [...ids];
}

// containerd 1.6 names a shim's socket sha256(<grpc address>/<namespace>/<id>) (runtime/v2/shim).
function shimSocket(layout: NodeLayout, id: string): string {
  return path.join(SHIM_SOCKET_DIR, createHash('sha256').update(path.join(layout.containerdSocket, CRI_NAMESPACE, id)).digest('hex'));
}

/**
 * Stops containerd and its shims and removes everything it made: mounts and files under its
 * dirs, its shim sockets in /run/containerd/s and libcni's cached results for its sandboxes.
 * Pods must be gone already (kubelet's teardown removes them while the CNI plugin can answer).
 */
export async function stopContainerd(layout: NodeLayout, record: ContainerdRecord | undefined): Promise<void> {
  const errors: string[] = [];
  const ids = containerIds(layout);
  const sysctls = record?.sysctls ?? (await readJournal<Pick<ContainerdRecord, 'sysctls'>>(layout.containerdJournal))?.sysctls;
  if (record !== undefined) await stopProcess(record.process).catch((err: unknown) => errors.push((err as Error).message));
  // Shims and a containerd no record names (an `up` killed before recording it).
  for (const pid of pidsMentioning(layout.containerdSocket)) {
    await stopPid(pid, `containerd process ${pid} of ${layout.containerdSocket}`).catch((err: unknown) => errors.push((err as Error).message));
  }
  try {
    await unmountAll([layout.containerdDir]);
  } catch (err) {
    errors.push((err as Error).message);
  }
  for (const id of ids) {
    await rm(shimSocket(layout, id), { force: true });
    if (existsSync(CNI_RESULTS_DIR)) {
      for (const f of readdirSync(CNI_RESULTS_DIR)) if (f.includes(id)) await rm(path.join(CNI_RESULTS_DIR, f), { force: true });
    }
  }
  if (sysctls !== undefined) await restoreSysctls(sysctls).catch((err: unknown) => errors.push((err as Error).message));
  // Shared with other containerds and CNI users: removed only once empty.
  for (const dir of [SHIM_SOCKET_DIR, path.dirname(SHIM_SOCKET_DIR), CNI_RESULTS_DIR, path.dirname(CNI_RESULTS_DIR)]) await rmdir(dir).catch(() => undefined);
  if (errors.length > 0) throw new Error(`containerd ${layout.containerdSocket}: ${errors.join('; ')}`);
  await rm(layout.containerdDir, { recursive: true, force: true });
}
