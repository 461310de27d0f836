// What every benchmark's entry does: `--cleanup` only sweeps an earlier run's leftovers; otherwise
// run once, print the result as the last line of stdout, and clean up also when killed.
import { spawnSync } from 'node:child_process';
import { registerCleanup } from '../../hack/controlplane/cleanup.js';

/** The value of `flag` in `argv` as a positive integer, or `fallback` when the flag is absent. */
export function positiveIntFlag(argv: readonly string[], flag: string, fallback: number): number {
  const i = argv.indexOf(flag);
  if (i < 0) return fallback;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${String(argv[i + 1])}`);
  return n;
}

export interface BenchRun {
  run(): Promise<unknown>;
  cleanup(): Promise<void>;
}

export async function benchMain<O>(name: string, self: string, parse: () => O | 'cleanup', sweep: () => Promise<void>, create: (opts: O) => BenchRun): Promise<void> {
  const opts = parse();
  if (opts === 'cleanup') {
    await sweep();
    return;
  }
  const bench = create(opts);
  const unregister = registerCleanup({
    name,
    stop: () => bench.cleanup(),
    // At 'exit' only synchronous work runs: a child process does the sweep.
    stopNow: () => void spawnSync(process.execPath, ['--import', 'tsx', self, '--cleanup'], { stdio: 'inherit' }),
  });
  try {
    const result = await bench.run();
    console.log(JSON.stringify(result));
  } finally {
    await bench.cleanup();
    unregister();
  }
}
