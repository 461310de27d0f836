// Upstream's endpoint id forms in API paths (pkg/endpoint/id): `[prefix:]value`, no prefix meaning
// cilium-local. Parsing is separate from the lookup so the forms are checked without an agent.
import { isIPv4, isIPv6 } from 'node:net';
import { attachmentId, type EndpointRecord } from '../endpoint/endpoint.js';
import { MAX_ENDPOINT_ID } from '../endpoint/id-allocator.js';
import { ApiError, badRequest } from './errors.js';

export const ENDPOINT_ID_PREFIXES = [
  'cilium-local',
  'cilium-global',
  'cni-attachment-id',
  'container-id',
  'container-name',
  'cep-name',
  'pod-name',
  'docker-endpoint',
  'ipv4',
  'ipv6',
] as const;

export type EndpointIdPrefix = (typeof ENDPOINT_ID_PREFIXES)[number];

export interface EndpointRef {
  prefix: EndpointIdPrefix;
  value: string;
  /** The local id, for cilium-local. */
  id?: number;
  /** cni-attachment-id: the container id and the interface in the pod. */
  containerId?: string;
  ifname?: string;
  /** cep-name and pod-name: `namespace/pod`. */
  namespace?: string;
  pod?: string;
}

function localId(value: string, field: string): number {
  if (!/^\d+$/.test(value)) throw badRequest(field, `${JSON.stringify(value)} is not a numeric endpoint id`);
  const id = Number(value);
  if (id < 1 || id > MAX_ENDPOINT_ID) throw badRequest(field, `${id} is not an endpoint id (1..${MAX_ENDPOINT_ID})`);
  return id;
}

/** `namespace/pod` (upstream) or `namespace:pod` (its older docs). */
function podRef(value: string, field: string): { namespace: string; pod: string } {
  const sep = value.includes('/') ? '/' : ':';
  const i = value.indexOf(sep);
  if (i <= 0 || i === value.length - 1) throw badRequest(field, `${JSON.stringify(value)} is not namespace/pod`);
  return { namespace: value.slice(0, i), pod: value.slice(i + 1) };
}

/** Parses the `{id}` of an /endpoint path; 400 naming what is wrong. */
export function parseEndpointId(text: string): EndpointRef {
  const field = 'endpoint id';
  const colon = text.indexOf(':');
  if (colon < 0) return { prefix: 'cilium-local', value: text, id: localId(text, field) };
  const prefix = text.slice(0, colon);
  const value = text.slice(colon + 1);
  if (!(ENDPOINT_ID_PREFIXES as readonly string[]).includes(prefix)) {
    throw badRequest(field, `unknown prefix ${JSON.stringify(prefix)} (one of ${ENDPOINT_ID_PREFIXES.join(', ')})`);
  }
  if (value === '') throw badRequest(field, `${prefix}: no value after the prefix`);
  const p = prefix as EndpointIdPrefix;
  switch (p) {
    case 'cilium-local':
      return { prefix: p, value, id: localId(value, field) };
    case 'cni-attachment-id': {
      // Upstream's NewCNIAttachmentID leaves the interface out when it has none.
      const i = value.lastIndexOf(':');
      if (i === 0 || i === value.length - 1) throw badRequest(field, `cni-attachment-id ${JSON.stringify(value)} is not <container-id>[:<ifname>]`);
      return i < 0 ? { prefix: p, value, containerId: value } : { prefix: p, value, containerId: value.slice(0, i), ifname: value.slice(i + 1) };
    }
    case 'cep-name':
    case 'pod-name':
      return { prefix: p, value, ...podRef(value, `${field} ${prefix}`) };
    case 'ipv4':
      if (!isIPv4(value)) throw badRequest(field, `${JSON.stringify(value)} is not an IPv4 address`);
      return { prefix: p, value };
    case 'ipv6':
      if (!isIPv6(value)) throw badRequest(field, `${JSON.stringify(value)} is not an IPv6 address`);
      return { prefix: p, value };
    default:
      return { prefix: p, value };
  }
}

/** Whether `ep` is the endpoint `ref` names. */
export function endpointMatches(ref: EndpointRef, ep: EndpointRecord): boolean {
  switch (ref.prefix) {
    case 'cilium-local':
      return ep.id === ref.id;
    case 'cni-attachment-id':
      // Every endpoint here has an interface name: an id without one names none of them.
      return ref.ifname !== undefined && attachmentId(ep) === `${ref.containerId}:${ref.ifname}`;
    case 'container-id':
      return ep.containerId === ref.value;
    case 'container-name':
      return ep.containerName === ref.value;
    case 'cep-name':
    case 'pod-name':
      return ep.namespace === ref.namespace && ep.podName === ref.pod;
    case 'ipv4':
      return ep.ipv4 === ref.value;
    // No endpoint here has an IPv6 address or a Docker libnetwork id.
    case 'ipv6':
    case 'docker-endpoint':
      return false;
    case 'cilium-global':
      // Upstream's lookup refuses it too (ErrUnsupportedID).
      throw badRequest('endpoint id', 'cilium-global ids are not supported for lookups');
  }
}

/** The endpoint `text` names among `endpoints`; 400 for a malformed id, 404 when none matches. */
export function lookupEndpoint(text: string, endpoints: readonly EndpointRecord[]): EndpointRecord {
  const ref = parseEndpointId(text);
  const ep = endpoints.find((e) => endpointMatches(ref, e));
  if (ep === undefined) throw new ApiError(404, `endpoint ${text} not found`);
  return ep;
}
