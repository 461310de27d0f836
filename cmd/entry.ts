// What every entry point does around its component: read the options, run it, and turn the
// outcome into upstream's exit codes (0 clean stop, 1 failure, 2 bad options).
import { CommanderError } from 'commander';
import { ConfigError } from '../controllers/config/options.js';
import type { Logger } from '../controllers/runtime/log.js';

export function runEntryPoint<C>(log: Logger, loadConfig: () => C, run: (config: C) => Promise<void>): void {
  let config: C;
  try {
    config = loadConfig();
  } catch (err) {
    // --help / --version: commander has printed what was asked.
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof ConfigError) {
      log.error('invalid configuration', { error: err.message });
      process.exit(2);
    }
    throw err;
  }
  run(config).then(
    () => process.exit(0),
    (err: Error) => {
      log.error('stopped with an error', { error: err.message });
      process.exit(1);
    },
  );
}
