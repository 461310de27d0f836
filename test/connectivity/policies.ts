// Applying and removing a test's policies, waiting until every node realized the change: each
// agent reports the generation of every CNP/CCNP it enforces (after its endpoints were
// regenerated) in its CiliumNode's realized annotation (controllers/policystatus/realized.ts), the
// same report the operator sums into the policies' Enforced condition. No fixed sleeps.
import type { CiliumNode } from '../../crds/gen/index.js';
import { decodeRealized, REALIZED_ANNOTATION } from '../../controllers/policystatus/realized.js';
import { kubectl, kubectlJson, kubectlOk, waitFor } from '../node/cluster.js';
import type { ConnectivityCluster } from './cluster.js';

export interface PolicyManifest {
  apiVersion: 'cilium.io/v2';
  kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

interface Applied {
  manifest: PolicyManifest;
  uid: string;
  generation: number;
}

const REALIZE_TIMEOUT_MS = 60_000;

function resourceArgs(m: PolicyManifest): string[] {
  return m.kind === 'CiliumNetworkPolicy' ? ['cnp', m.metadata.name, '-n', m.metadata.namespace ?? ''] : ['ccnp', m.metadata.name];
}

function label(m: PolicyManifest): string {
  return `${m.kind} ${m.metadata.namespace ? `${m.metadata.namespace}/` : ''}${m.metadata.name}`;
}

/** Each node's realized report (policy uid → generation, error). */
async function reports(cluster: ConnectivityCluster): Promise<Map<string, ReturnType<typeof decodeRealized>>> {
  const cns = (await kubectlJson<{ items: CiliumNode[] }>(cluster, ['get', 'ciliumnodes'])).items;
  const out = new Map<string, ReturnType<typeof decodeRealized>>();
  for (const node of cluster.nodes) {
    const cn = cns.find((c) => c.metadata.name === node.name);
    const text = cn?.metadata.annotations?.[REALIZED_ANNOTATION];
    out.set(node.name, text === undefined ? new Map() : decodeRealized(text));
  }
  return out;
}

/** Holds a test's policies; remove() takes them all back out and waits for every node to drop them. */
export class PolicySet {
  private readonly applied: Applied[] = [];

  constructor(private readonly cluster: ConnectivityCluster) {}

  async apply(manifests: readonly PolicyManifest[]): Promise<void> {
    if (manifests.length === 0) return;
    await kubectlOk(this.cluster, ['apply', '-f', '-'], { stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) });
    for (const m of manifests) {
      const obj = await kubectlJson<{ metadata: { uid: string; generation: number } }>(this.cluster, ['get', ...resourceArgs(m)]);
      this.applied.push({ manifest: m, uid: obj.metadata.uid, generation: obj.metadata.generation });
    }
    // A refused or partly enforced policy is a finding, not something to wait out.
    const refused = await waitFor(
      `every node to realize ${manifests.map(label).join(', ')}`,
      async () => {
        const byNode = await reports(this.cluster);
        for (const a of this.applied) {
          for (const [node, report] of byNode) {
            if (report instanceof Error) throw new Error(`node ${node}: ${report.message}`);
            const r = report.get(a.uid);
            if (r === undefined || r.generation < a.generation) return undefined;
            if (r.error !== undefined) return `node ${node} reports ${label(a.manifest)} generation ${r.generation} not enforced: ${r.error}`;
          }
        }
        return '';
      },
      REALIZE_TIMEOUT_MS,
      250,
    );
    if (refused !== '') throw new Error(refused);
  }

  async remove(): Promise<void> {
    const gone = this.applied.splice(0);
    for (const a of gone) {
      const r = await kubectl(this.cluster, ['delete', '--ignore-not-found', ...resourceArgs(a.manifest)]);
      if (r.code !== 0) throw new Error(`kubectl delete ${label(a.manifest)}: ${r.stderr.trim()}`);
    }
    await waitFor(
      `every node to drop ${gone.map((a) => label(a.manifest)).join(', ')}`,
      async () => {
        const byNode = await reports(this.cluster);
        for (const report of byNode.values()) if (!(report instanceof Error) && gone.some((a) => report.has(a.uid))) return undefined;
        return true;
      },
      REALIZE_TIMEOUT_MS,
      250,
    );
  }
}
