// Installs CustomResourceDefinitions with server-side apply and waits until the apiserver serves
// them: Established alone is not enough, clients resolve kinds through discovery.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiextensionsV1Api, CustomObjectsApi, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { apiJson } from './http.js';

export const fieldManager = 'cilium-ts-controlplane';

interface CrdSource {
  file: string;
  crd: V1CustomResourceDefinition;
}

export async function readCrdDir(dir: string): Promise<CrdSource[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort();
  } catch (err) {
    throw new Error(`CRDs: cannot read directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const sources: CrdSource[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`CRDs: ${file} is not valid YAML: ${doc.errors[0]?.message}`);
      const crd = doc.toJS() as V1CustomResourceDefinition | null;
      if (crd === null) continue;
      if (crd.apiVersion !== 'apiextensions.k8s.io/v1' || crd.kind !== 'CustomResourceDefinition') {
        throw new Error(`CRDs: ${file} holds ${crd.apiVersion}/${crd.kind}, expected apiextensions.k8s.io/v1 CustomResourceDefinition`);
      }
      if (!crd.metadata?.name) throw new Error(`CRDs: ${file} has a CustomResourceDefinition without metadata.name`);
      sources.push({ file, crd });
    }
  }
  return sources;
}

function apiErrorMessage(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (e.code !== undefined) {
    const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body);
    try {
      const status = JSON.parse(body) as { message?: string };
      return `HTTP ${e.code}: ${status.message ?? body}`;
    } catch {
      return `HTTP ${e.code}: ${body}`;
    }
  }
  return e.message ?? String(err);
}

async function waitEstablished(api: ApiextensionsV1Api, name: string, deadline: number): Promise<void> {
  let last = 'no conditions yet';
  for (;;) {
    const crd = await api.readCustomResourceDefinition({ name }).catch((err: unknown) => {
      throw new Error(`CRD ${name}: cannot read it back: ${apiErrorMessage(err)}`, { cause: err });
    });
    const conditions = crd.status?.conditions ?? [];
    const namesAccepted = conditions.find((c) => c.type === 'NamesAccepted');
    if (namesAccepted?.status === 'False') {
      throw new Error(`CRD ${name}: names not accepted: ${namesAccepted.reason}: ${namesAccepted.message}`);
    }
    const established = conditions.find((c) => c.type === 'Established');
    if (established?.status === 'True') return;
    if (established) last = `Established=${established.status} (${established.reason}: ${established.message})`;
    if (Date.now() >= deadline) throw new Error(`CRD ${name}: not Established in time; last: ${last}`);
    await sleep(100);
  }
}

async function waitServed(api: CustomObjectsApi, crd: V1CustomResourceDefinition, deadline: number): Promise<void> {
  const { group, names } = crd.spec;
  for (const version of crd.spec.versions.filter((v) => v.served)) {
    for (;;) {
      let last: string;
      try {
        const list = await api.getAPIResources({ group, version: version.name });
        if (list.resources.some((r) => r.name === names.plural)) break;
        last = `discovery lists ${list.resources.map((r) => r.name).join(', ') || 'nothing'}`;
      } catch (err) {
        last = apiErrorMessage(err);
      }
      if (Date.now() >= deadline) {
        throw new Error(`CRD ${crd.metadata?.name}: ${group}/${version.name} ${names.plural} not served by discovery in time; last: ${last}`);
      }
      await sleep(100);
    }
  }
}

export async function installCrds(kubeConfig: KubeConfig, dir: string, timeoutMs = 60_000): Promise<string[]> {
  const sources = await readCrdDir(dir);
  const extensions = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  await Promise.all(
    sources.map(async ({ file, crd }) => {
      try {
        // The raw object goes on the wire: client-node's typed serializer would drop the
        // x-kubernetes-* extensions and enums that carry our validation.
        const query = new URLSearchParams({ fieldManager, force: 'true' });
        await apiJson(kubeConfig, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata?.name}?${query.toString()}`, {
          method: 'PATCH',
          headers: { 'Content-Type': 'application/apply-patch+yaml' },
          body: JSON.stringify(crd),
        });
      } catch (err) {
        throw new Error(`CRD ${crd.metadata?.name} from ${file}: server-side apply refused: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }),
  );
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    sources.map(async ({ crd }) => {
      const name = crd.metadata?.name ?? '';
      await waitEstablished(extensions, name, deadline);
      await waitServed(custom, crd, deadline);
    }),
  );
  return sources.map(({ crd }) => crd.metadata?.name ?? '');
}
