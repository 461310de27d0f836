// Where the harness finds the repository, its CRDs and the tools built by hack/install-tools.sh.
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');

export const crdDir = path.join(repoRoot, 'crds', 'cilium.io', 'v2');

// CILIUM_TS_BIN_DIR lets a machine point at tools installed elsewhere; the default is where
// hack/install-tools.sh links them.
export function defaultBinDir(): string {
  return process.env.CILIUM_TS_BIN_DIR ?? path.join(repoRoot, '.local', 'bin');
}
