// For tests of the hubble CLI: run our CLI in-process, and the golden cases of testdata/ (each
// upstream v1.20.2's output of `observe --input-file flows.jsonl <args>`).
import { readFileSync } from 'node:fs';
import { runHubble } from './program.js';

const TESTDATA = new URL('./testdata/', import.meta.url);

export const readTestdata = (name: string) => readFileSync(new URL(name, TESTDATA), 'utf8');

export interface GoldenCase {
  golden: string;
  args: string[];
}
export const GOLDEN_CASES = JSON.parse(readTestdata('cases.json')) as GoldenCase[];
export const FLOWS_FILE = new URL('flows.jsonl', TESTDATA).pathname;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runOurHubble(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runHubble(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env, now: () => new Date() });
  return { code, stdout, stderr };
}
