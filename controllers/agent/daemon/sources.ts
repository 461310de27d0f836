// The endpoint manager's views of the apiserver: Pods and Namespaces from the agent's watches
// (with one GET when the watch has not brought a just-created object yet, as a CNI ADD often
// comes right after the pod was scheduled), and CiliumEndpoints written by server-side apply.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { CiliumEndpoint } from '../../../crds/gen/index.js';
import { isNotFound, type ApiClient } from '../../runtime/apiclient.js';
import { ciliumEndpoints, objectPath, type ResourceType } from '../../runtime/kinds.js';
import type { Resource } from '../../runtime/resource.js';
import { apply } from '../../runtime/ssa.js';
import { cepPodUid } from '../endpoint/cep.js';
import type { CiliumEndpointWriter } from '../endpoint/manager.js';

/** Upstream's field manager for what the agent writes. */
export const AGENT_FIELD_MANAGER = 'cilium-agent';

async function getOrUndefined<T>(client: ApiClient, path: string): Promise<T | undefined> {
  try {
    return await client.request<T>('GET', path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function cachedOrFetched<T extends V1Pod | V1Namespace>(client: ApiClient, resource: Resource<T>, type: ResourceType) {
  return async (name: string, namespace?: string): Promise<T | undefined> =>
    resource.store.get(namespace === undefined ? name : `${namespace}/${name}`) ?? getOrUndefined<T>(client, objectPath(type, name, namespace));
}

export function podSource(client: ApiClient, pods: Resource<V1Pod>, type: ResourceType) {
  const get = cachedOrFetched(client, pods, type);
  return { get: (namespace: string, name: string) => get(name, namespace) };
}

export function namespaceSource(client: ApiClient, namespaces: Resource<V1Namespace>, type: ResourceType) {
  const get = cachedOrFetched(client, namespaces, type);
  return { get: (name: string) => get(name) };
}

/**
 * CiliumEndpoint has no status subresource: the whole object is applied, forcing ownership of its
 * fields. Every write is checked against the Pod owner uid of the object found under that name and
 * pinned to the object read (apply with its resourceVersion, delete with a uid precondition): a CEP
 * changed between the read and the write fails with 409 Conflict, for the caller to retry, rather
 * than another pod's being overwritten or deleted.
 */
export function ciliumEndpointWriter(client: ApiClient): CiliumEndpointWriter {
  return {
    async apply(cep: CiliumEndpoint) {
      const { name, namespace } = cep.metadata;
      if (!name) throw new Error('apply CiliumEndpoint: metadata.name is required');
      const existing = await getOrUndefined<CiliumEndpoint>(client, objectPath(ciliumEndpoints, name, namespace));
      if (existing !== undefined && cepPodUid(existing) !== cepPodUid(cep)) return false;
      const rv = existing?.metadata.resourceVersion;
      const pinned = rv === undefined ? cep : { ...cep, metadata: { ...cep.metadata, resourceVersion: rv } };
      await apply(client, ciliumEndpoints, pinned, { fieldManager: AGENT_FIELD_MANAGER, force: true });
      return true;
    },
    async delete(namespace: string, name: string, podUid: string | undefined) {
      const path = objectPath(ciliumEndpoints, name, namespace);
      const existing = await getOrUndefined<CiliumEndpoint>(client, path);
      if (existing === undefined || cepPodUid(existing) !== podUid) return;
      const body = { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: existing.metadata.uid } };
      await client.request('DELETE', path, { body }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    },
  };
}
