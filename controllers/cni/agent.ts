// The plugin's side of the agent API: the calls it makes, and the wait for an agent that is still
// starting (kubelet runs pods' ADDs as soon as the conflist exists; upstream waits up to 30 s).
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentApiError, AgentUnreachableError, type AgentClient } from '../agent/api/client.js';
import type { EndpointChangeRequest } from '../agent/endpoint/change-request.js';
import { CNI_ERR, CniError } from './errors.js';

export const CONNECT_TIMEOUT_MS = 30_000;
const CONNECT_RETRY_MS = 100;

/** Runs `call`, again while the agent's socket is absent or refuses, until `timeoutMs` has passed. */
export async function whenAgentAnswers<T>(call: () => Promise<T>, timeoutMs = CONNECT_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof AgentUnreachableError)) throw err;
      if (Date.now() + CONNECT_RETRY_MS > deadline) {
        throw new CniError(CNI_ERR.tryAgainLater, 'cilium agent unreachable', `${err.message} (waited ${timeoutMs} ms)`, { cause: err });
      }
      await sleep(CONNECT_RETRY_MS);
    }
  }
}

/** An agent failure as a CNI error with `code`, naming the call; unreachable is "try again later". */
export function agentFailure(err: unknown, code: number, what: string): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof AgentUnreachableError) return new CniError(CNI_ERR.tryAgainLater, 'cilium agent unreachable', `${what}: ${err.message}`, { cause: err });
  // Not ready yet (restoring) or rate-limited: the same request will do later.
  if (isAgentStatus(err, 503) || isAgentStatus(err, 429)) return new CniError(CNI_ERR.tryAgainLater, 'cilium agent busy', `${what}: ${(err as Error).message}`, { cause: err });
  return new CniError(code, what, err instanceof Error ? err.message : String(err), { cause: err });
}

export function isAgentStatus(err: unknown, status: number): boolean {
  return err instanceof AgentApiError && err.status === status;
}

export function attachmentPath(containerId: string, ifname: string): string {
  return `/endpoint/cni-attachment-id:${containerId}:${ifname}`;
}

// The parts of upstream's models the plugin reads.
export interface DaemonConfigurationStatus {
  deviceMTU?: number;
  routeMTU?: number;
  datapathMode?: string;
}

export interface IPAMResponse {
  address?: { ipv4?: string; 'ipv4-pool-name'?: string; 'ipv4-expiration-uuid'?: string };
  'host-addressing'?: { ipv4?: { ip?: string; enabled?: boolean } };
  ipv4?: { ip?: string; 'expiration-uuid'?: string };
}

export interface EndpointHealth {
  overallHealth?: string;
}

export const agentCalls = {
  config: (c: AgentClient) => c.request<{ status?: DaemonConfigurationStatus }>('GET', '/config'),
  allocate: (c: AgentClient, owner: string) => c.request<IPAMResponse>('POST', '/ipam', { query: { family: 'ipv4', owner }, headers: { expiration: 'true' } }),
  release: (c: AgentClient, ip: string) => c.request<unknown>('DELETE', `/ipam/${ip}`),
  putEndpoint: (c: AgentClient, containerId: string, ifname: string, body: EndpointChangeRequest) => c.request<unknown>('PUT', attachmentPath(containerId, ifname), { body }),
  deleteEndpoint: (c: AgentClient, containerId: string, ifname: string) => c.request<unknown>('DELETE', attachmentPath(containerId, ifname)),
  deleteByContainer: (c: AgentClient, containerId: string) => c.request<unknown>('DELETE', '/endpoint', { body: { 'container-id': containerId } }),
  health: (c: AgentClient, containerId: string, ifname: string) => c.request<EndpointHealth>('GET', `${attachmentPath(containerId, ifname)}/healthz`),
};
