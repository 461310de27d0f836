// Deleting a test namespace the way the namespace controller would: no kube-controller-manager
// runs beside the test apiserver, so its contents are deleted here and the namespace finalized.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { apiJson, apiRequest } from '../../hack/controlplane/http.js';

// Aggregated discovery (apidiscovery.k8s.io/v2) lists every group's resources in one answer.
interface DiscoveryList {
  items: {
    metadata: { name?: string };
    versions: { version: string; resources: { resource: string; scope: string; verbs: string[] }[] }[];
  }[];
}

const aggregatedDiscovery = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

// Collection paths of every namespaced resource the apiserver serves, e.g. /api/v1/namespaces/x/pods.
async function namespacedCollections(kubeConfig: KubeConfig, namespace: string): Promise<string[]> {
  const roots = await Promise.all(
    ['/api', '/apis'].map((root) => apiJson<DiscoveryList>(kubeConfig, root, { headers: { Accept: aggregatedDiscovery } })),
  );
  return roots.flatMap((root) =>
    root.items.flatMap((group) => {
      // Versions come in preference order; the preferred one reaches every object of the group.
      const preferred = group.versions[0];
      if (preferred === undefined) return [];
      const groupVersion = group.metadata.name ? `/apis/${group.metadata.name}/${preferred.version}` : `/api/${preferred.version}`;
      return preferred.resources
        .filter((r) => r.scope === 'Namespaced' && r.verbs.includes('deletecollection'))
        .map((r) => `${groupVersion}/namespaces/${namespace}/${r.resource}`);
    }),
  );
}

async function expectStatus(kubeConfig: KubeConfig, what: string, apiPath: string, method: string, ok: number[], body?: string) {
  const res = await apiRequest(kubeConfig, apiPath, {
    method,
    body,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
  });
  if (!ok.includes(res.status)) throw new Error(`${what}: ${method} ${apiPath}: HTTP ${res.status}: ${res.body.slice(0, 500)}`);
  return res.status;
}

export async function deleteNamespace(kubeConfig: KubeConfig, name: string, timeoutMs = 30_000): Promise<void> {
  const what = `delete namespace ${name}`;
  const collections = await namespacedCollections(kubeConfig, name);
  // Grace period 0: a pod bound to a node would otherwise wait for a kubelet that never comes.
  await Promise.all(collections.map((c) => expectStatus(kubeConfig, what, `${c}?gracePeriodSeconds=0`, 'DELETE', [200, 404])));
  const nsPath = `/api/v1/namespaces/${name}`;
  if ((await expectStatus(kubeConfig, what, nsPath, 'DELETE', [200, 202, 404])) === 404) return;
  const finalize = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, spec: { finalizers: [] } });
  await expectStatus(kubeConfig, what, `${nsPath}/finalize`, 'PUT', [200, 404], finalize);
  const deadline = Date.now() + timeoutMs;
  while ((await expectStatus(kubeConfig, what, nsPath, 'GET', [200, 404])) === 200) {
    if (Date.now() >= deadline) throw new Error(`${what}: still present ${timeoutMs / 1000}s after finalizing`);
    await sleep(50);
  }
}
