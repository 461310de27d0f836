// `npm run gen-types`: rewrites crds/cilium.io/v2/*.yaml from crds/schema/ and crds/gen/*.ts from
// those YAMLs, and deletes files in those directories it no longer generates. The output is
// committed; crds/codegen.test.ts fails when it is stale or when an orphan is left behind.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { filesInGeneratedDirs, renderCrdFiles, renderTypeFiles } from '../crds/codegen.js';
import { repoRoot as repo } from './controlplane/paths.js';

const crds = renderCrdFiles();
const rendered = new Map([...crds, ...(await renderTypeFiles(crds))]);
for (const [path, content] of rendered) {
  await mkdir(dirname(join(repo, path)), { recursive: true });
  await writeFile(join(repo, path), content);
  console.log(`wrote ${path}`);
}
for (const path of await filesInGeneratedDirs(repo)) {
  if (rendered.has(path)) continue;
  await rm(join(repo, path));
  console.log(`deleted ${path} (no longer generated)`);
}
