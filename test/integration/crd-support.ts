// Helpers shared by the CRD integration suites: placing fixture objects for one test, applying
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

/**
 * Which of `objects` one `kubectl apply` call took (it names each in stdout) and, for each one it
 * refused, the lines of stderr that say why ('... Kind "name" is invalid: ...', with the "* ..."
 * lines under it when the apiserver lists several errors).
 */
export function applyVerdicts(result: CommandResult, objects: ManifestObject[]): Map<string, { ok: boolean; errors: string[] }> {
  const taken = new Set(result.stdout.split('\n').map((l) => l.split(' ')[0]?.split('/')[1]));
  const blocks = result.stderr.split(/\n(?!\* )/);
  return new Map(
    objects.map((o) => {
      const name = o.metadata.name;
      const ok = taken.has(name);
      const errors = ok ? [] : blocks.filter((b) => b.includes(`${o.kind}`) && b.includes(`"${name}" is invalid`)).flatMap((b) => b.split('\n'));
      return [name, { ok, errors }];
    }),
  );
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
  /** The current test's run: its own fresh namespace and name prefix. */
  readonly run: CrdTestRun;
}

/**
 * Registers hooks on the calling describe: the shared control plane before its tests, and around
 * each test a fresh namespace and run; after each test (also when it fails) the run's
 * cluster-scoped objects and its namespace are deleted.
 */
export function useCrdSuite(): CrdSuite {
  let cp: ControlPlane | undefined;
  let run: CrdTestRun | undefined;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;
  before(async function () {
    cp = await sharedControlPlane();
  });
  beforeEach(async function () {
    if (!cp) throw new Error('CRD suite: no control plane (its before() hook failed)');
    ns = await testNamespace(cp);
    run = crdTestRun(cp, ns.name);
  });
  afterEach(async function () {
    const [r, n] = [run, ns];
    run = undefined;
    ns = undefined;
    try {
      await r?.cleanup();
    } finally {
      await n?.cleanup();
    }
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`CRD suite: ${what} used outside a test`);
    return value;
  };
  return {
    get cp() {
      return started(cp, 'control plane');
    },
    get run() {
      return started(run, 'run');
    },
  };
}
