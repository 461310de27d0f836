// The BPF filesystem that pins live on. The agent mounts it itself when the host has not, as
// upstream does, so pins survive the process.
import { mkdirSync, statfsSync } from 'node:fs';
import { BpfError, fromNodeError } from './errors.js';
import { fn, lastErrno } from './native.js';

const BPF_FS_MAGIC = 0xcafe4a11;

export function isBpffs(dir: string): boolean {
  try {
    return statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** Mounts a bpffs instance at `dir` unless one is already there; returns whether it mounted. */
export function ensureBpffs(dir = '/sys/fs/bpf'): boolean {
  if (isBpffs(dir)) return false;
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw fromNodeError(err, 'create bpffs mount point', dir);
  }
  if (fn.mount('bpf', dir, 'bpf', 0, null) !== 0) throw new BpfError(lastErrno(), 'mount bpffs at', dir);
  return true;
}
