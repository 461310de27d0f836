// Mounts made for a node (containerd's rootfs overlays, shm and netns files, kubelet's volumes,
// our private bind mounts): found in /proc/self/mountinfo by path and unmounted deepest first,
// so no `rm -r` ever walks into a mounted file system.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type EnterCommand, withArgs } from './namespaces.js';

const run = promisify(execFile);

// mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''));
}

const isUnder = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}/`);

export function mountsUnder(dir: string): string[] {
  const root = path.resolve(dir);
  return [...new Set(mountPoints().filter((p) => isUnder(p, root)))];
}

/** A private bind mount, made in the mount namespace `enter` (a command prefix) enters. */
export async function bindMountPrivate(source: string, target: string, enter: EnterCommand): Promise<void> {
  try {
    await run(...withArgs(enter, ['mount', '--bind', source, target]));
    await run(...withArgs(enter, ['mount', '--make-private', target]));
  } catch (err) {
    throw new Error(`bind mount ${source} on ${target}: ${(err as { stderr?: string }).stderr?.trim() ?? (err as Error).message}`, { cause: err });
  }
}

async function unmountWhile(list: () => string[]): Promise<void> {
  const failures: string[] = [];
  for (let round = 0; round < 5; round++) {
    // Stacked mounts on one point need one umount each: repeat until none is left.
    const points = list().sort((a, b) => b.split('/').length - a.split('/').length || b.localeCompare(a));
    if (points.length === 0) return;
    failures.length = 0;
    for (const point of points) {
      try {
        await run('umount', [point]);
      } catch {
        try {
          await run('umount', ['-l', point]);
        } catch (err) {
          failures.push(`${point}: ${(err as { stderr?: string }).stderr?.trim() ?? (err as Error).message}`);
        }
      }
    }
  }
  const left = list();
  if (left.length > 0) throw new Error(`unmount: still mounted after 5 rounds: ${left.join(', ')}${failures.length ? ` (${failures.join('; ')})` : ''}`);
}

/** Unmounts everything at or below each dir; a busy mount is detached (lazy) rather than left. */
export function unmountAll(dirs: string[]): Promise<void> {
  return unmountWhile(() => dirs.flatMap(mountsUnder));
}
