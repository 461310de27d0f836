// Server-side apply: each controller sends the fields it owns under its own field manager, and
// status goes only through the /status subresource. The body is JSON sent as
// application/apply-patch+yaml (JSON is YAML); client-node 1.4.0's patch methods would pick
// json-patch for custom objects (ts-stack.md §1), so the content type is set here explicitly.
import type { ApiClient } from './apiclient.js';
import { objectPath, type KubeObject, type ResourceType } from './kinds.js';

export interface ApplyOptions {
  /** One per controller, e.g. "cilium-operator-policystatus". */
  fieldManager: string;
  /** Take over fields another manager owns instead of failing with 409 Conflict. */
  force?: boolean;
}

const applyPatch = 'application/apply-patch+yaml';

async function applyTo<T extends KubeObject>(client: ApiClient, type: ResourceType, obj: T, opts: ApplyOptions, subresource: string): Promise<T> {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`apply ${type.kind}: metadata.name is required`);
  if (!opts.fieldManager) throw new Error(`apply ${type.kind} ${name}: fieldManager is required`);
  const body = { ...obj, apiVersion: type.apiVersion, kind: type.kind };
  const q = new URLSearchParams({ fieldManager: opts.fieldManager });
  if (opts.force) q.set('force', 'true');
  const path = `${objectPath(type, name, obj.metadata?.namespace)}${subresource}?${q.toString()}`;
  return client.request<T>('PATCH', path, { body, contentType: applyPatch });
}

/** Applies `obj` (the fields this manager wants to own) and returns the object as stored. */
export function apply<T extends KubeObject>(client: ApiClient, type: ResourceType, obj: T, opts: ApplyOptions): Promise<T> {
  return applyTo(client, type, obj, opts, '');
}

/** Applies `obj.status` through /status; spec and metadata changes in `obj` are ignored there. */
export function applyStatus<T extends KubeObject & { status?: unknown }>(client: ApiClient, type: ResourceType, obj: T, opts: ApplyOptions): Promise<T> {
  return applyTo(client, type, obj, opts, '/status');
}
