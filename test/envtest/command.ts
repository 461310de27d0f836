// Runs a program without a shell and collects its output; a non-zero exit is a result, not an error.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runWithExitCode(
  binary: string,
  args: string[],
  opts: { stdin?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd, env: opts.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (err) => reject(new Error(`${binary} ${args.join(' ')}: cannot run: ${err.message}`)));
    // The program may exit without reading stdin (e.g. on a bad flag); its exit code says so.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
    // Killed by a signal: 128+signo, as a shell reports it.
    child.once('close', (code, signal) => resolve({ code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout, stderr }));
  });
}
