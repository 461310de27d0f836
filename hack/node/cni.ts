// The CNI bin dir every local node's containerd uses: cilium-cni (bundled by `npm run build:cni`'s
// code at each `up`, so the node runs the checkout's plugin) and the reference plugins from
// hack/install-tools.sh linked beside it (containerd's CRI sets up each pod's loopback with
// `loopback`; bench:cni compares against `bridge` + `host-local`).
import { existsSync } from 'node:fs';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { buildCniPlugin } from '../build-cni.js';
import { repoRoot } from '../controlplane/paths.js';

export const CILIUM_CNI = 'cilium-cni';
const REFERENCE_PLUGINS = ['loopback', 'bridge', 'host-local'];
const referencePluginDir = path.join(repoRoot, '.local', 'cni-plugins');

export async function ensureCniBinDir(binDir: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  for (const plugin of REFERENCE_PLUGINS) {
    const target = path.join(referencePluginDir, plugin);
    if (!existsSync(target)) throw new Error(`CNI plugin ${plugin} not found in ${referencePluginDir}; run \`npm run setup\``);
    if (!existsSync(path.join(binDir, plugin))) await symlink(target, path.join(binDir, plugin));
  }
  try {
    await buildCniPlugin(path.join(binDir, CILIUM_CNI));
  } catch (err) {
    throw new Error(`CNI plugin ${CILIUM_CNI}: bundling cmd/cilium-cni.ts into ${binDir} failed: ${(err as Error).message}`, { cause: err });
  }
}
