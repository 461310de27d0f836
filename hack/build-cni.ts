// Bundles the CNI plugin into one plain-JS file, .local/cni/bin/cilium-cni: kubelet's runtime runs
// it as a binary, with no tsx and no node_modules lookups at start. The shebang names the node that
// ran the build (absolute: a runtime's PATH need not hold node), through env(1) to drop the node
// settings of the runtime's environment, which are not the plugin's: NODE_OPTIONS could load
// anything into it, and NODE_EXTRA_CA_CERTS alone (set on many hosts for other tools) makes node
// parse a CA bundle at start, more than doubling a call; the exec of env costs ~1 ms.
// CommonJS: node reads a file without extension as CommonJS when no package.json says otherwise,
// so a copy in /opt/cni/bin runs as is; here, under the repository's "type": "module", a
// package.json beside it says so.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { repoRoot } from './controlplane/paths.js';

export const CNI_BIN_DIR = path.join(repoRoot, '.local', 'cni', 'bin');
export const CNI_PLUGIN = path.join(CNI_BIN_DIR, 'cilium-cni');

export async function buildCniPlugin(outfile = CNI_PLUGIN): Promise<string> {
  await mkdir(path.dirname(outfile), { recursive: true });
  await build({
    entryPoints: [path.join(repoRoot, 'cmd', 'cilium-cni.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: false,
    sourcemap: false,
    logLevel: 'warning',
    banner: { js: `#!/usr/bin/env -S -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS ${process.execPath}` },
  });
  await chmod(outfile, 0o755);
  await writeFile(path.join(path.dirname(outfile), 'package.json'), '{"type": "commonjs"}\n');
  return outfile;
}

if (process.argv[1] === import.meta.filename) {
  buildCniPlugin(process.argv[2] ? path.resolve(process.argv[2]) : undefined).then(
    (out) => process.stdout.write(`${out}\n`),
    (err: Error) => {
      process.stderr.write(`build-cni: ${err.message}\n`);
      process.exit(1);
    },
  );
}
