// Run as its own process by manager.test.ts: a manager whose leader-elected part reports when it
// leads and when it has drained; it exits when SIGTERM has stopped everything.
// Arguments: kubeconfig path, namespace of the Lease, Lease name.
import { once } from 'node:events';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { newApiClient } from '../../../../controllers/runtime/apiclient.js';
import { newLogger } from '../../../../controllers/runtime/log.js';
import { Manager } from '../../../../controllers/runtime/manager.js';

const [kubeconfigPath, namespace, lease] = process.argv.slice(2);
if (!kubeconfigPath || !namespace || !lease) throw new Error('usage: sigterm-manager <kubeconfig> <namespace> <lease>');
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(kubeconfigPath);
const client = newApiClient(kubeConfig);
const manager = new Manager({
  name: 'sigterm-manager',
  registry: new Registry(),
  logger: newLogger('sigterm-manager', 'warn'),
  leaderElection: { client, namespace, name: lease, identity: `sigterm-${process.pid}`, leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 250 },
}).add('leader-work', async (signal) => {
  console.log('LEADING');
  await once(signal, 'abort');
  console.log('DRAINED');
});
manager.handleSignals();
await manager.start();
console.log('STOPPED');
