// cilium-agent: parse the options, build the agent, run until SIGTERM/SIGINT.
// Exit codes: 0 after a clean stop, 1 on a failure, 2 on bad options.
import { CommanderError } from 'commander';
import { loadAgentConfig, type AgentConfig } from '../controllers/config/agent.js';
import { ConfigError } from '../controllers/config/options.js';
import { AgentDaemon, COMPONENT } from '../controllers/agent/daemon.js';
import { newLogger } from '../controllers/runtime/log.js';

const log = newLogger(COMPONENT);

function config(): AgentConfig {
  try {
    return loadAgentConfig(process.argv.slice(2), process.env);
  } catch (err) {
    // --help / --version: commander has printed what was asked.
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof ConfigError) {
      log.error('invalid configuration', { error: err.message });
      process.exit(2);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const daemon = await AgentDaemon.open({ config: config(), logger: log });
  daemon.handleSignals();
  await daemon.start();
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log.error('stopped with an error', { error: err.message });
    process.exit(1);
  },
);
