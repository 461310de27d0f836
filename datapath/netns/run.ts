// Runs external tools (iproute2 and commands inside a netns) with argument arrays only: no shell
// ever parses a string built from input. A failure carries the command line and its stderr.
import { execFile } from 'node:child_process';
import { ipCommand } from './netns-ref.js';
import type { NetnsRef } from './netns-ref.js';

export class CommandError extends Error {
  constructor(
    readonly context: string,
    readonly file: string,
    readonly args: readonly string[],
    readonly exitCode: number | string | null,
    readonly stderr: string,
  ) {
    const detail = stderr.trim() || `exit ${String(exitCode)}`;
    super(`${context}: \`${[file, ...args].join(' ')}\` failed: ${detail}`);
    this.name = 'CommandError';
  }
}

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

/** `context` says what was being done, e.g. "create veth ctst0h0", and opens the error message. */
export function runCommand(context: string, file: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
        const reason = err.killed ? `${stderr}\nkilled after ${opts.timeoutMs ?? 30_000} ms (${String(err.signal)})` : stderr || err.message;
        reject(new CommandError(context, file, args, code, reason));
        return;
      }
      resolve({ stdout, stderr });
    });
    if (opts.input !== undefined) {
      // A command that exits before reading its input (nsenter on a bad netns) breaks the pipe; its exit status says why.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(opts.input);
    }
  });
}

/** `ip` with the given arguments, inside `netns` when set (by name or by path). */
export function runIp(context: string, args: readonly string[], netns?: NetnsRef): Promise<CommandOutput> {
  const cmd = ipCommand(netns, args);
  return runCommand(context, cmd.file, cmd.args);
}

// A batch line is split on whitespace by iproute2 and "#" starts a comment: a token holding
// either would change the command, so it is refused instead.
const BATCH_TOKEN = /^[^\s#"'\\]+$/;

/**
 * Several `ip` commands in one process (`ip -batch -`), inside `netns` when set: one fork+exec
 * instead of one per command. iproute2 stops at the first failing line and names it in stderr.
 * `json`: what the commands print, they print as JSON (`ip -j`).
 */
export function runIpBatch(context: string, commands: readonly (readonly string[])[], netns?: NetnsRef, opts: { json?: boolean } = {}): Promise<CommandOutput> {
  for (const tokens of commands) {
    const bad = tokens.find((t) => !BATCH_TOKEN.test(t));
    if (bad !== undefined) throw new Error(`${context}: ip batch token ${JSON.stringify(bad)} is empty or holds whitespace, quotes or "#"`);
  }
  const cmd = ipCommand(netns, [...(opts.json === true ? ['-j'] : []), '-batch', '-']);
  return runCommand(context, cmd.file, cmd.args, { input: commands.map((c) => c.join(' ')).join('\n') + '\n' });
}

/** `ip -j ...` parsed; iproute2 prints nothing (not "[]") for some empty lists. */
export async function runIpJson<T>(context: string, args: readonly string[], netns?: NetnsRef): Promise<T[]> {
  const { stdout } = await runIp(context, ['-j', ...args], netns);
  const text = stdout.trim();
  return text === '' ? [] : (JSON.parse(text) as T[]);
}

/** True when iproute2's stderr says the object is already gone. */
export function isNotFound(err: unknown): boolean {
  return err instanceof CommandError && /Cannot find device|does not exist|No such file or directory|Cannot open network namespace/.test(err.stderr);
}
