// cilium-operator: parse the options, build the operator, run until SIGTERM/SIGINT. A lost
// leadership ends the process with 1, after which a fresh process campaigns again, as upstream's.
import { loadOperatorConfig } from '../controllers/config/operator.js';
import { buildOperator, COMPONENT } from '../controllers/operator/operator.js';
import { loadKubeConfig, newApiClient } from '../controllers/runtime/apiclient.js';
import { newLogger } from '../controllers/runtime/log.js';
import { runEntryPoint } from './entry.js';

const log = newLogger(COMPONENT);

runEntryPoint(log, () => loadOperatorConfig(process.argv.slice(2), process.env), async (cfg) => {
  const client = newApiClient(loadKubeConfig(cfg['k8s-kubeconfig-path']));
  const operator = buildOperator({ config: cfg, client, logger: log });
  operator.manager.handleSignals();
  log.info('starting', { identity: operator.identity, health: cfg['operator-api-serve-addr'], metrics: cfg['operator-prometheus-serve-addr'] });
  await operator.manager.start();
});
