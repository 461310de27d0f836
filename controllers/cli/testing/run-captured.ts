// Runs one `cilium` command line in-process with its output captured, for tests.
import { runCli } from '../program.js';

export interface CapturedRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCaptured(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; now?: Date; signal?: AbortSignal } = {}): Promise<CapturedRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    env: opts.env ?? {},
    now: () => opts.now ?? new Date(),
    signal: opts.signal,
  });
  return { code, stdout, stderr };
}
