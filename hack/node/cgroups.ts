// The node's cgroup parent in every cgroup v1 hierarchy (kubelet with cgroupDriver cgroupfs needs
// it in each, and runc creates pods below it). Teardown kills what still runs below it, then
// removes the directories deepest first.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Mount points of the cgroup hierarchies (v1 ones and, on a hybrid host, the unified one). */
export function cgroupHierarchies(): { mountPoint: string; version: 1 | 2 }[] {
  const result: { mountPoint: string; version: 1 | 2 }[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    const fsType = post?.split(' ')[0];
    const mountPoint = pre?.split(' ')[4];
    if (mountPoint === undefined) continue;
    if (fsType === 'cgroup') result.push({ mountPoint, version: 1 });
    else if (fsType === 'cgroup2') result.push({ mountPoint, version: 2 });
  }
  return result;
}

export async function createCgroupRoot(cgroup: string): Promise<void> {
  for (const { mountPoint, version } of cgroupHierarchies()) {
    if (version !== 1) continue;
    const dir = path.join(mountPoint, cgroup);
    await mkdir(dir, { recursive: true });
    // A new cpuset has no CPUs and no memory nodes: no task could join it.
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = path.join(path.dirname(dir), file);
      if (existsSync(parent)) await writeFile(path.join(dir, file), (await readFile(parent, 'utf8')).trim());
    }
  }
}

function treeDeepestFirst(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [...children.flatMap((c) => treeDeepestFirst(path.join(dir, c.name))), dir];
}

function pidsIn(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const dir of dirs) {
    try {
      for (const line of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line !== '') pids.add(Number(line));
    } catch {
      // removed meanwhile
    }
  }
  return [...pids];
}

/** Kills every process left below the cgroup (in any hierarchy) and removes its directories. */
export async function removeCgroupRoot(cgroup: string, timeoutMs = 10_000): Promise<void> {
  const roots = cgroupHierarchies().map(({ mountPoint }) => path.join(mountPoint, cgroup));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = pidsIn(roots.flatMap(treeDeepestFirst));
    if (pids.length === 0) break;
    if (Date.now() > deadline) throw new Error(`cgroup ${cgroup}: processes ${pids.join(', ')} still running ${timeoutMs / 1000}s after SIGKILL`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(50);
  }
  const left: string[] = [];
  for (const dir of roots.flatMap(treeDeepestFirst)) {
    // A cgroup whose last task just exited may still be busy for a moment.
    let removed = false;
    for (let i = 0; i < 50 && !removed; i++) {
      try {
        await rmdir(dir);
        removed = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') removed = true;
        else await sleep(20);
      }
    }
    if (!removed) left.push(dir);
  }
  if (left.length > 0) throw new Error(`cgroup ${cgroup}: cannot remove ${left.join(', ')}`);
}
