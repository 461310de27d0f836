// A node's own namespaces: its netns on the underlay and one mount namespace that its containerd
// and kubelet share (node-facts: kubelet's volume mounts must be visible to runc; the private
// copies of kubelet's hard-coded paths must not clash between nodes). A holder process keeps the
// mount namespace alive; it is a slave of the root one, so host mounts show up inside while the
// node's own mounts (rootfs overlays, secret volumes, pod netns files) stay inside and vanish with
// it. /sys is mounted again inside, so /sys/class/net shows the node's netns (sysfs shows the
// netns of whoever mounted it; cilium-cni reads veth ifindexes there), with the host's /sys/fs
// (cgroup hierarchies, bpffs) carried over: remounting /sys alone, as `ip netns exec` does, hides
// the cgroups from kubelet. The agent joins both namespaces too. Teardown kills every process in
// either namespace, which also covers an `up` that was killed before it recorded the holder.
import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { repoRoot } from '../controlplane/paths.js';
import { isRunning, logTail, startProcess, type ProcessRecord } from '../controlplane/process.js';
import { readJournal, writeJournal } from './journal.js';
import type { NodeLayout } from './layout.js';
import { UNDERLAY, createAttachedNetns, killNamespace, netnsPath, nodeIP, nodeNetnsName, removeNetns } from './underlay.js';

export interface NodeNamespacesRecord {
  index: number;
  netns: string;
  nodeIP: string;
  /** Holds the mount namespace; containerd and kubelet enter it through its pid. */
  holder?: ProcessRecord;
  mntInode?: number;
}

const run = promisify(execFile);
const READY_TIMEOUT_MS = 5_000;

// Run inside the node's namespaces; $1 is an empty dir to park /sys/fs on meanwhile.
const REMOUNT_SYS = 'set -e; mkdir -p "$1"; mount --rbind /sys/fs "$1"; mount -t sysfs sysfs /sys; mount --move "$1" /sys/fs; rmdir "$1"';

function mntInode(pid: number): number | undefined {
  try {
    const m = /^mnt:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/mnt`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export type EnterCommand = [string, ...string[]];

/** The command prefix that runs a program in the node's netns and mount namespace. */
export function enterNode(record: NodeNamespacesRecord): EnterCommand {
  if (record.holder === undefined || !isRunning(record.holder)) throw new Error(`node ${record.netns}: its mount namespace holder is not running`);
  // Entering a mount namespace moves to its root directory: stay in the checkout (node's --import tsx resolves from there).
  return ['nsenter', `--target=${record.holder.pid}`, '--mount', '--net', `--wd=${repoRoot}`];
}

export async function startNodeNamespaces(layout: NodeLayout, index: number, logPath: string): Promise<NodeNamespacesRecord> {
  const netns = nodeNetnsName(index);
  const record: NodeNamespacesRecord = { index, netns: netnsPath(netns), nodeIP: nodeIP(index) };
  await writeJournal(layout.namespacesJournal, record);
  await createAttachedNetns(netns, `${record.nodeIP}/${UNDERLAY.prefixLength}`, UNDERLAY.hostIP);
  // nsenter and unshare exec, so the holder keeps the pid we recorded.
  record.holder = await startProcess({
    name: `mount-ns-${layout.name}`,
    binary: 'nsenter',
    args: [`--net=${record.netns}`, 'unshare', '--mount', '--propagation', 'slave', 'sleep', 'infinity'],
    logPath,
    detached: true,
  });
  await writeJournal(layout.namespacesJournal, record);
  const own = mntInode(process.pid);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(record.holder)) throw new Error(`mount namespace holder of ${layout.name} exited; log ${logPath}:\n${logTail(logPath)}`);
    const inode = mntInode(record.holder.pid);
    if (inode !== undefined && inode !== own) {
      record.mntInode = inode;
      break;
    }
    if (Date.now() > deadline) throw new Error(`mount namespace holder of ${layout.name} did not unshare within ${READY_TIMEOUT_MS / 1000}s`);
    await sleep(10);
  }
  await writeJournal(layout.namespacesJournal, record);
  try {
    await run(...withArgs(enterNode(record), ['sh', '-c', REMOUNT_SYS, 'remount-sys', path.join(layout.dir, 'sys-fs')]));
  } catch (err) {
    throw new Error(`node ${layout.name}: remounting /sys in its namespaces: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err });
  }
  return record;
}

/** execFile's (file, args) for a command behind the enter prefix. */
export function withArgs(enter: EnterCommand, command: string[]): [string, string[]] {
  return [enter[0], [...enter.slice(1), ...command]];
}

export function namespacesStatus(record: NodeNamespacesRecord): { healthy: boolean; lines: string[] } {
  const running = record.holder !== undefined && isRunning(record.holder);
  return {
    healthy: running,
    lines: [`netns ${record.netns} (${record.nodeIP}), mount namespace holder ${running ? 'running' : 'NOT running'} (pid ${record.holder?.pid})`],
  };
}

/** Kills everything left in the node's namespaces and deletes its netns. */
export async function stopNodeNamespaces(layout: NodeLayout, index: number, record: NodeNamespacesRecord | undefined): Promise<void> {
  record ??= await readJournal<NodeNamespacesRecord>(layout.namespacesJournal);
  const errors: string[] = [];
  await removeNetns(nodeNetnsName(index)).catch((err: unknown) => errors.push((err as Error).message));
  if (record?.mntInode !== undefined) await killNamespace('mnt', record.mntInode, `mount namespace of ${layout.name}`).catch((err: unknown) => errors.push((err as Error).message));
  if (errors.length > 0) throw new Error(`namespaces of ${layout.name}: ${errors.join('; ')}`);
  await rm(layout.namespacesJournal, { force: true });
  // The node's dir and its parent go with the last of the node's parts.
  for (const dir of [layout.dir, path.dirname(layout.dir)]) await rmdir(dir).catch(() => undefined);
}
