// The test control plane shared by every test of one mocha run (contract: issue 2, test/envtest).
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { runWithExitCode, type CommandResult } from './command.js';
import { startControlPlane, type ControlPlane, type RunningControlPlane } from '../../hack/controlplane/controlplane.js';
import { deleteNamespace } from './namespaces.js';
import { processGlobal } from '../../hack/controlplane/process-global.js';
import { newLogger } from '../../controllers/runtime/log.js';

export type { ControlPlane } from '../../hack/controlplane/controlplane.js';

// Kept per process, not per module copy, so every copy of this module shares one control plane
// and the root hook in ./hooks.ts stops it whichever copy it loaded.
const shared = processGlobal<{ starting?: Promise<RunningControlPlane> }>('cilium-ts.envtest.shared', () => ({}));

// Started on first use so test runs that never touch the apiserver do not pay for it.
export function sharedControlPlane(): Promise<RunningControlPlane> {
  // `npm run test:unit` sets it: unit tests run as any user, without an apiserver.
  if (process.env.CILIUM_TS_TEST_TIER === 'unit') {
    return Promise.reject(new Error('shared control plane: refused in the unit tier (CILIUM_TS_TEST_TIER=unit); a test that needs the apiserver belongs in test/integration/'));
  }
  shared.starting ??= startControlPlane().then((cp) => {
    newLogger('envtest').info('shared control plane started', {
      startMs: cp.record.startMs,
      server: cp.record.serverUrl,
      crds: cp.record.crds.length,
    });
    return cp;
  });
  return shared.starting;
}

export async function stopSharedControlPlane(): Promise<void> {
  const starting = shared.starting;
  if (starting === undefined) return;
  shared.starting = undefined;
  // A failed start has already cleaned up after itself.
  const cp = await starting.catch(() => undefined);
  await cp?.stop();
}

export function kubectl(cp: ControlPlane, args: string[], opts: { stdin?: string } = {}): Promise<CommandResult> {
  return runWithExitCode(path.join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfigPath, ...args], opts);
}

export async function testNamespace(cp: ControlPlane): Promise<{ name: string; cleanup(): Promise<void> }> {
  const name = `test-${randomBytes(5).toString('hex')}`;
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name, labels: { 'cilium-ts.io/test': 'true' } } } });
  } catch (err) {
    throw new Error(`test namespace ${name}: create failed: ${(err as Error).message}`, { cause: err });
  }
  return { name, cleanup: () => deleteNamespace(cp.kubeConfig, name) };
}
