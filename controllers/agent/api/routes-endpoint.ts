// /endpoint: what the CNI plugin creates and deletes pods' endpoints through, and what
// `cilium-dbg endpoint list|get` reads.
import { InvalidEndpointRequestError, parseEndpointChangeRequest, type EndpointChangeRequest } from '../endpoint/change-request.js';
import type { EndpointRecord } from '../endpoint/endpoint.js';
import { EndpointConflictError, EndpointNotFoundError } from '../endpoint/manager.js';
import type { Logger } from '../../runtime/log.js';
import { addressingNow, type AgentApiDeps } from './deps.js';
import { lookupEndpoint, parseEndpointId, type EndpointRef } from './endpoint-id.js';
import { ApiError, badRequest } from './errors.js';
import type { IpamExpirations } from './ipam-expiration.js';
import { hasLabels, requestedLabels } from './labels-filter.js';
import { derivedLabels, ENDPOINT_OPTIONS, endpointHealth, endpointModel, labelConfiguration, nodeAddressing, type NodeAddressingModel } from './models.js';
import type { ApiRequest, Router } from './router.js';
import { jsonBody } from './server.js';

/** How long a create or delete waits for the endpoints of before a restart to be restored. */
const RESTORE_WAIT_MS = 30_000;

export interface EndpointRouteDeps {
  deps: AgentApiDeps;
  expirations: IpamExpirations;
  /** Resolves once the endpoints of before a restart are back; a create or delete before would race them. */
  restored: (signal: AbortSignal) => Promise<void>;
  log: Logger;
}

export async function hostAddressing(deps: AgentApiDeps): Promise<NodeAddressingModel> {
  return nodeAddressing(await addressingNow(deps.node));
}

export async function endpointModels(deps: AgentApiDeps, eps: readonly EndpointRecord[]): Promise<Record<string, unknown>[]> {
  const host = await hostAddressing(deps);
  return eps.map((ep) => endpointModel(ep, { policyRevision: deps.repo.revision, realized: deps.datapath.endpointPolicy(ep.id).realized, hostAddressing: host }));
}

/** The body of PUT /endpoint/{id} with what the path names filled in; 400 when they disagree. */
export function withPathId(ref: EndpointRef, body: Record<string, unknown>): Record<string, unknown> {
  const out = { ...body };
  const agree = (field: string, fromPath: string | number) => {
    const v = out[field];
    if (v === undefined || v === null || v === '' || v === 0) out[field] = fromPath;
    else if (v !== fromPath) throw badRequest(field, `${JSON.stringify(v)} differs from the path's endpoint id ${ref.prefix}:${ref.value}`);
  };
  switch (ref.prefix) {
    case 'cilium-local':
      agree('id', ref.id as number);
      break;
    case 'cni-attachment-id':
      agree('container-id', ref.containerId as string);
      if (ref.ifname !== undefined) agree('container-interface-name', ref.ifname);
      break;
    case 'container-id':
      agree('container-id', ref.value);
      break;
    default:
      throw badRequest('endpoint id', `prefix ${ref.prefix} cannot name a new endpoint (use a numeric id, cni-attachment-id: or container-id:)`);
  }
  return out;
}

function objectBody(req: ApiRequest, what: string): Record<string, unknown> {
  const body = jsonBody(req, what);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest(what, 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

function managerError(err: unknown): Error {
  if (err instanceof InvalidEndpointRequestError) return badRequest(err.field === '' ? 'endpoint change request' : err.field, err.reason);
  if (err instanceof EndpointConflictError) return new ApiError(409, err.message);
  if (err instanceof EndpointNotFoundError) return new ApiError(404, err.message);
  return err instanceof Error ? err : new Error(String(err));
}

/** The fields of a PATCH that would change `ep`: this agent derives them and cannot take them from a client. */
function patchedFields(req: EndpointChangeRequest, ep: EndpointRecord): string[] {
  const same: Record<string, (v: never) => boolean> = {
    state: (v: string) => v === ep.state,
    labels: (v: string[]) => v.length === 0 || JSON.stringify([...v].sort()) === JSON.stringify([...ep.identityLabels].sort()),
    addressing: (v: { ipv4?: string; ipv6?: string }) => (v.ipv4 === undefined || v.ipv4 === ep.ipv4) && v.ipv6 === undefined,
    'container-id': (v: string) => v === ep.containerId,
    'interface-name': (v: string) => v === ep.ifname,
    'interface-index': (v: number) => v === ep.ifindex,
    mac: (v: string) => v === ep.mac,
    'host-mac': (v: string) => v === ep.hostMac,
    'k8s-namespace': (v: string) => v === ep.namespace,
    'k8s-pod-name': (v: string) => v === ep.podName,
    id: (v: number) => v === 0 || v === ep.id,
  };
  return Object.entries(req)
    .filter(([k, v]) => v !== undefined && v !== null && k in same && !(same[k] as (v: unknown) => boolean)(v))
    .map(([k]) => k);
}

export function endpointRoutes(router: Router, r: EndpointRouteDeps): void {
  const { deps } = r;
  const find = (req: ApiRequest) => lookupEndpoint(req.params.id as string, deps.endpoints.list());
  const waitRestored = async (req: ApiRequest) => {
    const timeout = AbortSignal.timeout(RESTORE_WAIT_MS);
    try {
      await r.restored(AbortSignal.any([req.signal, timeout]));
    } catch {
      throw new ApiError(503, `agent not ready: endpoints of before the restart are not restored yet (waited ${RESTORE_WAIT_MS / 1000} s)`);
    }
  };

  router.add('GET', '/endpoint', async (req) => {
    const wanted = requestedLabels(req);
    const eps = deps.endpoints.list().filter((ep) => hasLabels([...ep.identityLabels, ...derivedLabels(ep)], wanted));
    if (eps.length === 0 && wanted.length > 0) throw new ApiError(404, `no endpoint has the labels ${wanted.map((l) => `${l.source}:${l.key}=${l.value}`).join(', ')}`);
    return { status: 200, body: await endpointModels(deps, eps) };
  });

  // CNI DEL: every endpoint of the container (upstream's EndpointBatchDeleteRequest).
  router.add('DELETE', '/endpoint', async (req) => {
    const body = objectBody(req, 'endpoint batch delete request');
    const containerId = body['container-id'];
    if (typeof containerId !== 'string' || containerId === '') throw badRequest('container-id', 'is required: the container whose endpoints to delete');
    await waitRestored(req);
    return deleteReply(() => deps.endpoints.delete(containerId), r.log);
  });

  router.add('GET', '/endpoint/{id}', async (req) => ({ status: 200, body: (await endpointModels(deps, [find(req)]))[0] }));

  router.add('PUT', '/endpoint/{id}', async (req) => {
    const ref = parseEndpointId(req.params.id as string);
    const body = withPathId(ref, objectBody(req, 'endpoint change request'));
    let parsed: EndpointChangeRequest;
    try {
      parsed = parseEndpointChangeRequest(body);
    } catch (err) {
      throw managerError(err);
    }
    const ip = parsed.addressing?.ipv4;
    const uuid = parsed.addressing?.['ipv4-expiration-uuid'];
    // A uuid that is not the allocation's would leave its timer to release a live endpoint's address.
    if (ip !== undefined && !r.expirations.accepts(ip, uuid)) {
      throw badRequest('addressing.ipv4-expiration-uuid', `${uuid} is not the expiration of ${ip}'s allocation`);
    }
    await waitRestored(req);
    let ep: EndpointRecord;
    try {
      ep = await deps.endpoints.create(parsed);
    } catch (err) {
      throw managerError(err);
    }
    r.expirations.stop(ep.ipv4);
    return { status: 201, body: (await endpointModels(deps, [ep]))[0] };
  });

  router.add('PATCH', '/endpoint/{id}', (req) => {
    const ep = find(req);
    let parsed: EndpointChangeRequest;
    try {
      parsed = parseEndpointChangeRequest(objectBody(req, 'endpoint change request'));
    } catch (err) {
      throw managerError(err);
    }
    const changed = patchedFields(parsed, ep);
    if (changed.length > 0) {
      throw new ApiError(
        501,
        `endpoint ${ep.id}: changing ${changed.join(', ')} is not supported: labels come from the Pod and its Namespace, state from the agent, addressing and interfaces from the CNI ADD`,
      );
    }
    return { status: 200 };
  });

  router.add('DELETE', '/endpoint/{id}', async (req) => {
    const ep = find(req);
    await waitRestored(req);
    return deleteReply(() => deps.endpoints.delete(ep.id), r.log);
  });

  router.add('GET', '/endpoint/{id}/healthz', (req) => ({ status: 200, body: endpointHealth(find(req).state) }));
  router.add('GET', '/endpoint/{id}/labels', (req) => ({ status: 200, body: labelConfiguration(find(req)) }));
  router.add('PATCH', '/endpoint/{id}/labels', (req) => {
    find(req);
    throw new ApiError(501, 'user labels are not supported: an endpoint carries the labels of its Pod and Namespace');
  });
  router.add('GET', '/endpoint/{id}/config', (req) => {
    find(req);
    return { status: 200, body: { realized: { options: { ...ENDPOINT_OPTIONS }, 'label-configuration': { user: [] } }, immutable: {} } };
  });
  router.add('PATCH', '/endpoint/{id}/config', (req) => {
    find(req);
    throw new ApiError(501, 'endpoint options are fixed in this agent (conntrack, drop, trace and policy-verdict notifications always on)');
  });
  // This agent keeps no per-endpoint status log; its changes are in the agent log.
  router.add('GET', '/endpoint/{id}/log', (req) => {
    find(req);
    return { status: 200, body: [] };
  });
}

/** 200, or 206 with the number of failed steps when the endpoint was removed with errors (upstream's Errors). */
async function deleteReply(del: () => Promise<EndpointRecord[]>, log: Logger): Promise<{ status: number; body?: unknown }> {
  try {
    await del();
    return { status: 200 };
  } catch (err) {
    if (err instanceof EndpointNotFoundError) throw new ApiError(404, err.message);
    const message = err instanceof Error ? err.message : String(err);
    log.warn('endpoint deleted with errors', { error: message });
    return { status: 206, body: message.split('; ').length };
  }
}
