// cilium-agent: parse the options, build the agent, run until SIGTERM/SIGINT.
import { AgentDaemon, COMPONENT } from '../controllers/agent/daemon.js';
import { loadAgentConfig } from '../controllers/config/agent.js';
import { newLogger } from '../controllers/runtime/log.js';
import { runEntryPoint } from './entry.js';

const log = newLogger(COMPONENT);

runEntryPoint(log, () => loadAgentConfig(process.argv.slice(2), process.env), async (config) => {
  const daemon = await AgentDaemon.open({ config, logger: log, nodeNetworking: true });
  daemon.handleSignals();
  await daemon.start();
});
