// Named network namespaces (/run/netns/<name>, as `ip netns` manages them) and commands run
// inside a namespace given by name or by path.
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { assertNetnsName } from './validate.js';
import { isNotFound, runCommand, runIp, runIpJson } from './run.js';
import type { CommandOutput, RunOptions } from './run.js';
import { inNetns, netnsCommand, type NetnsRef } from './netns-ref.js';

export async function createNetns(name: string): Promise<void> {
  await runIp(`create netns ${assertNetnsName(name)}`, ['netns', 'add', name]);
}

/** Deletes the namespace; returns false when it did not exist. */
export async function deleteNetns(name: string): Promise<boolean> {
  try {
    await runIp(`delete netns ${assertNetnsName(name)}`, ['netns', 'delete', name]);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function listNetns(): Promise<string[]> {
  const rows = await runIpJson<{ name: string }>('list netns', ['netns', 'list']);
  return rows.map((r) => r.name);
}

/**
 * setpriv asks the kernel to SIGKILL the command when its caller dies (ip netns exec and nsenter
 * keep that across their exec), so a killed test or benchmark leaves nothing running in a namespace.
 */
function netnsExecArgv(netns: NetnsRef, file: string, args: readonly string[]): string[] {
  const cmd = netnsCommand(netns, file, args);
  return ['--pdeathsig', 'KILL', '--', cmd.file, ...cmd.args];
}

/** Runs `file args...` inside the namespace and resolves with its output once it exits 0. */
export function execInNetns(netns: NetnsRef, file: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandOutput> {
  return runCommand(`run ${file}${inNetns(netns)}`, 'setpriv', netnsExecArgv(netns, file, args), opts);
}

/** Starts a long-running `file args...` inside the namespace; the caller owns the child. */
export function spawnInNetns(netns: NetnsRef, file: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn('setpriv', netnsExecArgv(netns, file, args), { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
}
