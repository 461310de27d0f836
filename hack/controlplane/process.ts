// Starting and stopping the control plane's processes. A process is identified by its pid and its
// start time in /proc, so a recorded pid that the kernel has since reused is never signalled.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessRecord {
  name: string;
  pid: number;
  // Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
  startTicks: number;
  logPath: string;
}

export interface StartOptions {
  name: string;
  binary: string;
  args: string[];
  logPath: string;
  // Detached processes outlive the caller (the cluster command); attached ones die with it.
  detached: boolean;
}

const pollMs = 50;

function readStat(pid: number): { state: string; startTicks: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is parenthesised and may hold spaces; fields after it are plain.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = Number(fields[19]);
  if (state === undefined || !Number.isInteger(startTicks)) {
    throw new Error(`process ${pid}: cannot parse /proc/${pid}/stat`);
  }
  return { state, startTicks };
}

function executableOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

export function isRunning(record: ProcessRecord): boolean {
  const stat = readStat(record.pid);
  return stat !== undefined && stat.startTicks === record.startTicks && stat.state !== 'Z' && stat.state !== 'X';
}

export function logTail(logPath: string, lines = 40): string {
  try {
    return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(no log at ${logPath}: ${(err as Error).message})`;
  }
}

export async function startProcess(opts: StartOptions): Promise<ProcessRecord> {
  const log = openSync(opts.logPath, 'a');
  // setpriv keeps the pid (it execs the binary) and makes the kernel SIGKILL the child when this
  // process dies without running its cleanup, so a crashed test run leaves no orphans.
  const [command, args] = opts.detached
    ? [opts.binary, opts.args]
    : ['setpriv', ['--pdeathsig', 'KILL', '--', opts.binary, ...opts.args]];
  try {
    const child = spawn(command, args, { stdio: ['ignore', log, log], detached: opts.detached });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new Error(`${opts.name}: cannot start ${command}: ${err.message}`)));
    });
    if (opts.detached) child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`${opts.name}: ${command} started without a pid`);
    const stat = readStat(pid);
    if (stat === undefined) {
      throw new Error(`${opts.name}: exited right after start; log ${opts.logPath}:\n${logTail(opts.logPath)}`);
    }
    return { name: opts.name, pid, startTicks: stat.startTicks, logPath: opts.logPath };
  } finally {
    closeSync(log);
  }
}

async function waitForExit(record: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(record)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

function signal(record: ProcessRecord, sig: NodeJS.Signals): void {
  try {
    process.kill(record.pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
      throw new Error(`${record.name} (pid ${record.pid}): cannot send ${sig}: ${(err as Error).message}`, { cause: err });
    }
  }
}

// SIGTERM, then SIGKILL after graceMs; resolves once the process is gone.
export async function stopProcess(record: ProcessRecord, graceMs = 10_000): Promise<void> {
  if (!isRunning(record)) return;
  signal(record, 'SIGTERM');
  if (await waitForExit(record, graceMs)) return;
  signal(record, 'SIGKILL');
  if (!(await waitForExit(record, 5_000))) {
    throw new Error(`${record.name} (pid ${record.pid}): still running 5s after SIGKILL`);
  }
}

// For process 'exit' handlers, where nothing asynchronous runs any more.
export function killNow(record: ProcessRecord): void {
  if (isRunning(record)) signal(record, 'SIGKILL');
}

// Pids of processes whose command line mentions text (e.g. a work dir): the check that nothing
// a control plane started is left over. With executables, only processes running one of them.
export function pidsMentioning(text: string, executables?: string[]): number[] {
  const wanted = executables?.map((e) => {
    try {
      return realpathSync(e);
    } catch {
      return e;
    }
  });
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const pid = Number(entry);
    if (pid === process.pid || !cmdline.includes(text) || readStat(pid)?.state === 'Z') continue;
    if (wanted !== undefined && !wanted.includes(executableOf(pid))) continue;
    pids.push(pid);
  }
  return pids;
}

// Stops a process known only by its pid (found with pidsMentioning), with the same escalation.
export async function stopPid(pid: number, name: string): Promise<void> {
  const stat = readStat(pid);
  if (stat === undefined) return;
  await stopProcess({ name, pid, startTicks: stat.startTicks, logPath: `(not recorded for pid ${pid})` });
}
