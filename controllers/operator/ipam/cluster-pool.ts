// Cluster-pool IPAM, operator side (upstream pkg/ipam/allocator/podcidr): carves
// `--cluster-pool-ipv4-cidr` into per-node podCIDRs of `--cluster-pool-ipv4-mask-size` bits and
// hands each node one. A CIDR is never held by two nodes: after a restart or leader failover the
// allocator is first restored from the podCIDRs the CiliumNodes already carry.
import { ipv4String, parseIPv4Prefix } from '../../../datapath/maps/ipv4.js';

export const DEFAULT_CLUSTER_POOL_IPV4_CIDR = '10.0.0.0/8';
export const DEFAULT_CLUSTER_POOL_IPV4_MASK_SIZE = 24;
/** A node CIDR needs a usable address besides network and broadcast (upstream's minimum is /30). */
const MAX_MASK_SIZE = 30;
/** Kubernetes' cidrset bound: at most 2^16 node CIDRs per cluster CIDR. */
const MAX_MASK_DIFF = 16;

interface Pool {
  cidr: string;
  base: number;
  bits: number;
  /** Node CIDRs in this pool. */
  size: number;
  /** Node CIDR index → node. */
  owners: Map<number, string>;
  /** Where the next search starts, so a just-released CIDR is not handed out again at once. */
  next: number;
}

export interface RestoreConflict {
  node: string;
  cidr: string;
  reason: string;
}

export class ClusterPoolAllocator {
  private readonly pools: Pool[];
  private readonly byNode = new Map<string, { pool: Pool; index: number }>();

  constructor(
    cidrs: readonly string[] = [DEFAULT_CLUSTER_POOL_IPV4_CIDR],
    readonly maskSize = DEFAULT_CLUSTER_POOL_IPV4_MASK_SIZE,
  ) {
    if (cidrs.length === 0) throw new Error('cluster-pool-ipv4-cidr: empty; need at least one CIDR');
    if (!Number.isInteger(maskSize) || maskSize < 1 || maskSize > MAX_MASK_SIZE) {
      throw new Error(`cluster-pool-ipv4-mask-size: ${maskSize} is not an integer in 1..${MAX_MASK_SIZE}`);
    }
    this.pools = cidrs.map((cidr) => {
      let p;
      try {
        p = parseIPv4Prefix(cidr, 'CIDR');
      } catch (err) {
        throw new Error(`cluster-pool-ipv4-cidr: ${(err as Error).message}`, { cause: err });
      }
      if (maskSize < p.bits) throw new Error(`cluster-pool-ipv4-mask-size: /${maskSize} is wider than cluster-pool-ipv4-cidr ${cidr}`);
      if (maskSize - p.bits > MAX_MASK_DIFF) {
        throw new Error(`cluster-pool-ipv4-mask-size: /${maskSize} cuts ${cidr} into more than 2^${MAX_MASK_DIFF} node CIDRs`);
      }
      return { cidr, base: p.addr.readUInt32BE(0), bits: p.bits, size: 2 ** (maskSize - p.bits), owners: new Map(), next: 0 };
    });
    for (const [i, a] of this.pools.entries()) {
      for (const b of this.pools.slice(i + 1)) {
        const bits = Math.min(a.bits, b.bits);
        if (prefixOf(a.base, bits) === prefixOf(b.base, bits)) throw new Error(`cluster-pool-ipv4-cidr: ${a.cidr} overlaps ${b.cidr}`);
      }
    }
  }

  /** The node's podCIDR, allocating one from the first pool that has room. */
  allocate(node: string): string {
    const held = this.get(node);
    if (held !== undefined) return held;
    for (const pool of this.pools) {
      if (pool.owners.size >= pool.size) continue;
      let index = pool.next;
      while (pool.owners.has(index)) index = (index + 1) % pool.size;
      pool.owners.set(index, node);
      pool.next = (index + 1) % pool.size;
      this.byNode.set(node, { pool, index });
      return this.cidrOf(pool, index);
    }
    throw new Error(`node ${node}: no free /${this.maskSize} left in cluster-pool-ipv4-cidr ${this.pools.map((p) => p.cidr).join(',')}`);
  }

  get(node: string): string | undefined {
    const held = this.byNode.get(node);
    return held === undefined ? undefined : this.cidrOf(held.pool, held.index);
  }

  release(node: string): void {
    const held = this.byNode.get(node);
    if (held === undefined) return;
    held.pool.owners.delete(held.index);
    this.byNode.delete(node);
  }

  /** node → podCIDR for every node holding one. */
  allocations(): Map<string, string> {
    return new Map([...this.byNode.keys()].map((node) => [node, this.get(node) ?? '']));
  }

  /**
   * Records the podCIDRs nodes already hold (CiliumNode spec.ipam.podCIDRs; IPv6 entries are
   * ignored), before any allocation. Nodes are taken in name order, so when two claim one CIDR the
   * first by name keeps it. Like upstream, a node whose claim cannot be honoured (taken, outside
   * the pools, wrong size) gets no CIDR here; the conflict is returned for the operator to report
   * in status.ipam.operator-status.error rather than silently renumbering a running node.
   */
  restore(claims: ReadonlyMap<string, readonly string[]>): RestoreConflict[] {
    const conflicts: RestoreConflict[] = [];
    for (const node of [...claims.keys()].sort()) {
      for (const cidr of claims.get(node) ?? []) {
        if (cidr.includes(':')) continue;
        const reason = this.claim(node, cidr);
        if (reason !== undefined) conflicts.push({ node, cidr, reason });
      }
    }
    return conflicts;
  }

  private claim(node: string, cidr: string): string | undefined {
    let p;
    try {
      p = parseIPv4Prefix(cidr, 'podCIDR');
    } catch (err) {
      return (err as Error).message;
    }
    if (p.bits !== this.maskSize) return `podCIDR ${cidr} is not a /${this.maskSize} (cluster-pool-ipv4-mask-size)`;
    const addr = p.addr.readUInt32BE(0);
    const pool = this.pools.find((q) => prefixOf(addr, q.bits) === q.base);
    if (pool === undefined) return `podCIDR ${cidr} is outside cluster-pool-ipv4-cidr`;
    const index = (addr - pool.base) / 2 ** (32 - this.maskSize);
    const owner = pool.owners.get(index);
    if (owner === node) return undefined;
    if (owner !== undefined) return `podCIDR ${cidr} is already allocated to node ${owner}`;
    const held = this.get(node);
    if (held !== undefined) return `node already holds podCIDR ${held}`;
    pool.owners.set(index, node);
    this.byNode.set(node, { pool, index });
    return undefined;
  }

  private cidrOf(pool: Pool, index: number): string {
    const addr = Buffer.alloc(4);
    addr.writeUInt32BE(pool.base + index * 2 ** (32 - this.maskSize), 0);
    return `${ipv4String(addr)}/${this.maskSize}`;
  }
}

function prefixOf(addr: number, bits: number): number {
  return bits === 0 ? 0 : (addr & (~0 << (32 - bits))) >>> 0;
}

