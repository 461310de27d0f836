// `npm run gen-types`: rewrites crds/cilium.io/v2/*.yaml from crds/schema/ and crds/gen/*.ts from
// those YAMLs. The output is committed; crds/codegen.test.ts fails when it is stale.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrdFiles, renderTypeFiles } from '../crds/codegen.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

const crds = renderCrdFiles();
const types = await renderTypeFiles(crds);
for (const [path, content] of [...crds, ...types]) {
  await mkdir(dirname(join(repo, path)), { recursive: true });
  await writeFile(join(repo, path), content);
  console.log(`wrote ${path}`);
}
