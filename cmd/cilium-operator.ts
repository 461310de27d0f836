// cilium-operator: parse the options, build the operator, run until SIGTERM/SIGINT.
// Exit codes: 0 after a clean stop, 1 on a failure (including lost leadership, after which a
// fresh process campaigns again, as upstream's operator does), 2 on bad options.
import { KubeConfig } from '@kubernetes/client-node';
import { CommanderError } from 'commander';
import { ConfigError } from '../controllers/config/options.js';
import { loadOperatorConfig, type OperatorConfig } from '../controllers/config/operator.js';
import { buildOperator, COMPONENT } from '../controllers/operator/operator.js';
import { newApiClient } from '../controllers/runtime/apiclient.js';
import { newLogger } from '../controllers/runtime/log.js';

const log = newLogger(COMPONENT);

function config(): OperatorConfig {
  try {
    return loadOperatorConfig(process.argv.slice(2));
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
  const cfg = config();
  const kubeConfig = new KubeConfig();
  const path = cfg['k8s-kubeconfig-path'];
  if (path) kubeConfig.loadFromFile(path);
  else kubeConfig.loadFromCluster();
  const operator = buildOperator({ config: cfg, client: newApiClient(kubeConfig), logger: log });
  operator.manager.handleSignals();
  log.info('starting', { identity: operator.identity, health: cfg['operator-api-serve-addr'], metrics: cfg['operator-prometheus-serve-addr'] });
  await operator.manager.start();
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log.error('stopped with an error', { error: err.message });
    process.exit(1);
  },
);
