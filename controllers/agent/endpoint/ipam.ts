// The part of IPAM the endpoint manager uses, and its binding to the host-scope pool.
import type { HostScopePool } from '../ipam/pool.js';

export interface EndpointIpam {
  /** A free address recorded for `owner` ("namespace/pod"). */
  allocate(owner: string): string;
  /** Records `ip` for `owner` again after a restart; throws when another owner holds it. */
  claim(ip: string, owner: string): void;
  /** False when `ip` was not allocated. */
  release(ip: string): boolean;
}

export function hostScopeIpam(pool: HostScopePool): EndpointIpam {
  return {
    allocate: (owner) => pool.allocate(owner),
    claim: (ip, owner) => pool.restore({ [ip]: { owner } }),
    release: (ip) => pool.release(ip),
  };
}
