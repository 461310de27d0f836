// /ipam: addresses the CNI plugin allocates before it creates an endpoint (cluster-pool IPAM, one
// pool named `default`, IPv4 only).
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from '../../runtime/log.js';
import { addressingNow, type AgentApiDeps } from './deps.js';
import { ApiError, badRequest } from './errors.js';
import type { IpamExpirations } from './ipam-expiration.js';
import { nodeAddressing } from './models.js';
import type { ApiRequest, Router } from './router.js';

export const DEFAULT_POOL = 'default';

export interface IpamRouteDeps {
  deps: AgentApiDeps;
  expirations: IpamExpirations;
  log: Logger;
}

/** The query's pool: empty or `default`; any other is answered with `status` (the call's failure code). */
function checkPool(req: ApiRequest, status: number): void {
  const pool = req.query.get('pool') ?? '';
  if (pool !== '' && pool !== DEFAULT_POOL) throw new ApiError(status, `pool ${JSON.stringify(pool)}: cluster-pool IPAM has only the ${DEFAULT_POOL} pool`);
}

function ipamNotReady(status: number): ApiError {
  return new ApiError(status, 'IPAM not ready: the node has no podCIDR yet (waiting for the operator to set spec.ipam.podCIDRs)');
}

export function ipamRoutes(router: Router, r: IpamRouteDeps): void {
  const { deps } = r;

  router.add('POST', '/ipam', async (req) => {
    const family = req.query.get('family') ?? '';
    if (family !== '' && family !== 'ipv4' && family !== 'ipv6') throw badRequest('family', `${JSON.stringify(family)} is not ipv4 or ipv6`);
    if (family === 'ipv6') throw new ApiError(502, 'IPv6 allocation: IPv6 is disabled on this agent');
    checkPool(req, 502);
    const owner = req.query.get('owner') ?? '';
    const expiration = String(req.headers.expiration ?? '').toLowerCase() === 'true';
    const addressing = await addressingNow(deps.node);
    if (addressing === undefined || !deps.ipamReady()) throw ipamNotReady(502);
    let ip: string;
    try {
      ip = deps.ipam.allocate(owner);
    } catch (err) {
      throw new ApiError(502, `IPv4 allocation for ${JSON.stringify(owner)}: ${(err as Error).message}`);
    }
    const uuid = expiration ? r.expirations.start(ip) : undefined;
    r.log.debug('address allocated', { ip, owner, expiration: uuid });
    return {
      status: 201,
      body: {
        address: { ipv4: ip, 'ipv4-pool-name': DEFAULT_POOL, ...(uuid ? { 'ipv4-expiration-uuid': uuid } : {}) },
        'host-addressing': nodeAddressing(addressing),
        ipv4: { ip, cidrs: [addressing.podCIDR], gateway: addressing.routerIP, ...(uuid ? { 'expiration-uuid': uuid } : {}) },
      },
    };
  });

  router.add('POST', '/ipam/{ip}', (req) => {
    const ip = req.params.ip as string;
    if (isIPv6(ip)) throw new ApiError(501, 'IPv6 allocation: IPv6 is disabled on this agent');
    if (!isIPv4(ip)) throw badRequest('ip', `${JSON.stringify(ip)} is not an IP address`);
    checkPool(req, 500);
    const owner = req.query.get('owner') ?? '';
    if (!deps.ipamReady()) throw ipamNotReady(500);
    const holder = deps.node.used()[ip];
    if (holder !== undefined) throw new ApiError(409, `ip ${ip}: already allocated to ${JSON.stringify(holder.owner)}`);
    try {
      deps.ipam.claim(ip, owner);
    } catch (err) {
      throw badRequest('ip', (err as Error).message);
    }
    return { status: 200 };
  });

  router.add('DELETE', '/ipam/{ip}', (req) => {
    const arg = req.params.ip as string;
    if (isIPv6(arg)) throw new ApiError(501, 'IPv6 release: IPv6 is disabled on this agent');
    checkPool(req, 500);
    if (!deps.ipamReady()) throw ipamNotReady(500);
    // Upstream takes an address or an owner name.
    const ips = isIPv4(arg)
      ? [arg]
      : Object.entries(deps.node.used())
          .filter(([, a]) => a.owner === arg)
          .map(([ip]) => ip);
    if (ips.length === 0) throw new ApiError(404, `no address allocated to owner ${JSON.stringify(arg)}`);
    for (const ip of ips) {
      // Releasing a live endpoint's address would hand it to the next pod while this one uses it.
      const ep = deps.endpoints.list().find((e) => e.ipv4 === ip && !e.externalIpam);
      if (ep !== undefined) throw new ApiError(409, `ip ${ip}: in use by endpoint ${ep.id} (${ep.namespace}/${ep.podName}); delete the endpoint instead`);
    }
    for (const ip of ips) {
      let released: boolean;
      try {
        released = deps.ipam.release(ip);
      } catch (err) {
        throw badRequest('ip', (err as Error).message);
      }
      r.expirations.stop(ip);
      if (!released) throw new ApiError(404, `ip ${ip}: not allocated`);
    }
    return { status: 200 };
  });
}

/** What an expired allocation does: release the address unless an endpoint took it meanwhile. */
export function expireAllocation(deps: AgentApiDeps, log: Logger): (ip: string) => void {
  return (ip) => {
    if (deps.endpoints.list().some((e) => e.ipv4 === ip)) return;
    try {
      if (deps.ipam.release(ip)) log.info('IPAM allocation expired without an endpoint; released', { ip });
    } catch (err) {
      log.warn('IPAM expiration: release failed', { ip, error: (err as Error).message });
    }
  };
}
