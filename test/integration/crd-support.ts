// Helpers shared by the CRD integration suites: placing fixture objects for one run, applying
// them with kubectl, and removing the cluster-scoped ones again.
import { randomInt } from 'node:crypto';
import type { CommandResult } from '../envtest/command.js';
import { kubectl, sharedControlPlane, testNamespace, type ControlPlane } from '../envtest/index.js';
import { isClusterScoped, placed, toYaml, type ManifestObject } from '../fixtures/policies/index.js';

const runLabel = 'cilium-ts.io/crd-test-run';

export interface CrdTestRun {
  id: string;
  namespace: string;
  /** The fixture object as this run creates it: in the run's namespace or with the run's prefix and label. */
  place(obj: ManifestObject): ManifestObject;
  apply(objects: ManifestObject[], extraArgs?: string[]): Promise<CommandResult>;
  /** Deletes every cluster-scoped object this run labelled. */
  cleanup(): Promise<void>;
}

function crdTestRun(cp: ControlPlane, namespace: string): CrdTestRun {
  const id = `crd${randomInt(100_000, 1_000_000)}`;
  return {
    id,
    namespace,
    place(obj) {
      const copy = placed(obj, namespace, id);
      if (isClusterScoped(copy)) {
        const labels = (copy.metadata.labels ?? {}) as Record<string, string>;
        copy.metadata.labels = { ...labels, [runLabel]: id };
      }
      return copy;
    },
    apply(objects, extraArgs = []) {
      return kubectl(cp, ['apply', ...extraArgs, '-f', '-'], { stdin: toYaml(objects) });
    },
    async cleanup() {
      const r = await kubectl(cp, [
        'delete',
        'ciliumclusterwidenetworkpolicies,ciliumidentities,ciliumnodes',
        '-l',
        `${runLabel}=${id}`,
        '--ignore-not-found',
        '--wait=false',
      ]);
      if (r.code !== 0) throw new Error(`CRD test run ${id}: deleting cluster-scoped objects failed: ${r.stderr}`);
    },
  };
}

/** `kubectl get` table output as rows of cells (columns are separated by two or more spaces). */
export function tableRows(stdout: string): string[][] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/));
}

export interface CrdSuite {
  readonly cp: ControlPlane;
  readonly run: CrdTestRun;
}

/**
 * Registers hooks on the calling describe: before its tests a fresh namespace and a run on the
 * shared control plane; after them (also when they fail) the run's cluster-scoped objects and the
 * namespace are deleted.
 */
export function useCrdSuite(): CrdSuite {
  let cp: ControlPlane | undefined;
  let run: CrdTestRun | undefined;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;
  before(async function () {
    cp = await sharedControlPlane();
    ns = await testNamespace(cp);
    run = crdTestRun(cp, ns.name);
  });
  after(async function () {
    try {
      await run?.cleanup();
    } finally {
      await ns?.cleanup();
    }
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('CRD suite: used before its before() hook ran');
    return value;
  };
  return {
    get cp() {
      return started(cp);
    },
    get run() {
      return started(run);
    },
  };
}
