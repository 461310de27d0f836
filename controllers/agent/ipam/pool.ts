// The agent's host-scope allocator on its node's podCIDR (cluster-pool IPAM): the router IP
// (cilium_host, the pods' gateway) is allocated first and so gets the lowest usable address, then
// the health endpoint, then pods. The network and broadcast addresses are never handed out.
import { ipv4Bytes, ipv4String, parseIPv4Prefix } from '../../../datapath/maps/ipv4.js';

/** Owners upstream records for the node's own addresses. */
export const OWNER_ROUTER = 'router';
export const OWNER_HEALTH = 'health';

/** One entry of CiliumNode status.ipam.used. */
export interface AllocationIP {
  /** "namespace/pod" for pods, `router` or `health` for the node's own. */
  owner: string;
  resource?: string;
}

export class HostScopePool {
  readonly cidr: string;
  private readonly first: number;
  private readonly last: number;
  private readonly byAddress = new Map<number, AllocationIP>();

  constructor(podCidr: string) {
    const p = parseIPv4Prefix(podCidr, 'podCIDR');
    if (p.bits > 30) throw new Error(`podCIDR ${podCidr}: /${p.bits} leaves no address besides network and broadcast`);
    const network = p.addr.readUInt32BE(0);
    this.cidr = `${ipv4String(p.addr)}/${p.bits}`;
    this.first = network + 1;
    this.last = network + 2 ** (32 - p.bits) - 2;
  }

  /** Usable addresses in the pool. */
  get capacity(): number {
    return this.last - this.first + 1;
  }

  /** The lowest free address, recorded for `owner`. */
  allocate(owner: string, resource?: string): string {
    for (let v = this.first; v <= this.last; v++) {
      if (this.byAddress.has(v)) continue;
      this.byAddress.set(v, entry(owner, resource));
      return valueString(v);
    }
    throw new Error(`podCIDR ${this.cidr}: all ${this.capacity} addresses in use; cannot allocate for ${owner}`);
  }

  /** Frees `ip`; false when it was not allocated. */
  release(ip: string): boolean {
    return this.byAddress.delete(this.value(ip));
  }

  /**
   * Takes back what status.ipam.used recorded before a restart, so nothing in use is handed out
   * again. Throws naming the address when an entry is not in this pool, not usable or held by
   * another owner, before recording any.
   */
  restore(used: Readonly<Record<string, AllocationIP>>): void {
    const entries = Object.entries(used).map(([ip, a]) => {
      const v = this.value(ip);
      const held = this.byAddress.get(v);
      if (held !== undefined && held.owner !== a.owner) throw new Error(`${ip}: restored for ${a.owner} but already allocated to ${held.owner}`);
      return [v, a] as const;
    });
    for (const [v, a] of entries) this.byAddress.set(v, entry(a.owner, a.resource));
  }

  /** The status.ipam.used shape: ip → owner. */
  used(): Record<string, AllocationIP> {
    const out: Record<string, AllocationIP> = {};
    for (const v of [...this.byAddress.keys()].sort((a, b) => a - b)) out[valueString(v)] = { ...(this.byAddress.get(v) as AllocationIP) };
    return out;
  }

  private value(ip: string): number {
    const v = ipv4Bytes(ip, `address in podCIDR ${this.cidr}`).readUInt32BE(0);
    if (v < this.first || v > this.last) throw new Error(`${ip} is not a usable address of podCIDR ${this.cidr}`);
    return v;
  }
}

function entry(owner: string, resource?: string): AllocationIP {
  return resource === undefined ? { owner } : { owner, resource };
}

function valueString(v: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return ipv4String(b);
}
