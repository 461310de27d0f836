// cilium-cni: the CNI plugin binary (bundled to plain JS by hack/build-cni.ts). The runtime passes
// the command in CNI_* variables and the network configuration on stdin.
import { readFileSync } from 'node:fs';
import { runPlugin } from '../controllers/cni/plugin.js';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    // No stdin (VERSION probes may close it): an empty configuration.
    return '';
  }
}

void runPlugin(process.env, readStdin()).then(({ stdout, exitCode }) => {
  process.stdout.write(stdout, () => process.exit(exitCode));
});
