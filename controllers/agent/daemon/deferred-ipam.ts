// The endpoint manager's IPAM before the node has its podCIDR. Restoring endpoints must not wait
// for the operator (a restart keeps enforcing whatever the apiserver does), so the addresses they
// claim back are recorded here and handed to the node's pool once it exists; new allocations wait
// for the pool and fail until then.
import type { EndpointIpam } from '../endpoint/ipam.js';
import type { AllocationIP } from '../ipam/pool.js';

export class DeferredIpam implements EndpointIpam {
  private inner?: EndpointIpam;
  private readonly claims = new Map<string, string>();

  /** The addresses claimed while no pool existed, in status.ipam.used's shape. */
  claimed(): Record<string, AllocationIP> {
    return Object.fromEntries([...this.claims].map(([ip, owner]) => [ip, { owner }]));
  }

  /** From now on every call goes to `inner`; what was claimed before must already be in it. */
  bind(inner: EndpointIpam): void {
    this.inner = inner;
    this.claims.clear();
  }

  allocate(owner: string): string {
    if (this.inner === undefined) throw new Error(`IPAM for ${owner}: the node has no podCIDR yet (waiting for the operator to set spec.ipam.podCIDRs)`);
    return this.inner.allocate(owner);
  }

  claim(ip: string, owner: string): void {
    if (this.inner !== undefined) return this.inner.claim(ip, owner);
    const holder = this.claims.get(ip);
    if (holder !== undefined && holder !== owner) throw new Error(`IPAM: ${ip} is claimed by ${holder}, not ${owner}`);
    this.claims.set(ip, owner);
  }

  release(ip: string): boolean {
    if (this.inner !== undefined) return this.inner.release(ip);
    return this.claims.delete(ip);
  }
}
