// Cluster-pool IPAM, the loop: every CiliumNode gets spec.ipam.podCIDRs from the allocator,
// written with server-side apply under its own field manager and the node's uid as precondition
// (so a node deleted meanwhile is never re-created by us). Before the first key, the allocator is
// restored from a fresh (quorum) list of all CiliumNodes: a new leader learns every CIDR its
// predecessor handed out, even ones its own watch has not delivered yet, so no CIDR is handed out
// twice across failover. A CIDR is released only once the apiserver says the node is gone: a node
// missing from the store only because its object failed validation keeps its CIDR.
import type { CiliumNode } from '../../../crds/gen/index.js';
import { ApiError, isConflict, isNotFound, type ApiClient } from '../../runtime/apiclient.js';
import type { ReconcileContext, Reconciler } from '../../runtime/controller.js';
import { ciliumNodes, collectionPath, objectPath } from '../../runtime/kinds.js';
import type { Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import { apply, applyStatus } from '../../runtime/ssa.js';
import type { ClusterPoolAllocator } from './cluster-pool.js';

export const IPAM_FIELD_MANAGER = 'cilium-operator-ipam';

interface RawNodeList {
  items: { metadata?: { name?: string }; spec?: { ipam?: { podCIDRs?: unknown } } }[];
  metadata: { continue?: string };
}

export interface IpamReconcilerOptions {
  client: ApiClient;
  nodes: Resource<CiliumNode>;
  allocator: ClusterPoolAllocator;
  logger: Logger;
}

export class IpamReconciler implements Reconciler {
  private restored?: Promise<void>;

  constructor(private readonly opts: IpamReconcilerOptions) {}

  async reconcile(name: string, ctx: ReconcileContext): Promise<void> {
    this.restored ??= this.restore(ctx.signal).catch((err: unknown) => {
      this.restored = undefined;
      throw err;
    });
    await this.restored;
    const { client, allocator } = this.opts;
    const node = this.opts.nodes.store.get(name);
    if (node === undefined) {
      if (allocator.get(name) === undefined) return;
      try {
        await client.request('GET', objectPath(ciliumNodes, name), { signal: ctx.signal });
        return; // still there, only not readable by us: keep its CIDR
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      ctx.log.info('CiliumNode deleted, releasing its podCIDR', { node: name, podCIDR: allocator.get(name) });
      allocator.release(name);
      return;
    }
    const podCIDRs = node.spec.ipam?.podCIDRs ?? [];
    const ipv4 = podCIDRs.filter((c) => !c.includes(':'));
    if (allocator.get(name) === undefined && ipv4.length > 0) {
      // A node that already names its CIDR keeps it or gets an error, never a silent renumbering
      // (its pods hold addresses from that CIDR).
      const conflict = allocator.restore(new Map([[name, ipv4]]))[0];
      if (conflict !== undefined) return this.fail(node, `podCIDR ${conflict.cidr} cannot be kept: ${conflict.reason}`, ctx);
    }
    let cidr: string;
    try {
      cidr = allocator.allocate(name);
    } catch (err) {
      return this.fail(node, (err as Error).message, ctx);
    }
    if (ipv4.length !== 1 || ipv4[0] !== cidr) {
      try {
        await apply(
          client,
          ciliumNodes,
          { metadata: { name, uid: node.metadata.uid }, spec: { ipam: { podCIDRs: [cidr, ...podCIDRs.filter((c) => c.includes(':'))] } } },
          { fieldManager: IPAM_FIELD_MANAGER, force: true },
        );
      } catch (err) {
        // Deleted (409: uid precondition) or replaced under the same name (422: uid immutable):
        // its delete/add events follow.
        if (isConflict(err) || isNotFound(err) || (err instanceof ApiError && err.status === 422 && err.message.includes('metadata.uid'))) return;
        throw err;
      }
      ctx.log.info('podCIDR allocated', { node: name, podCIDR: cidr });
    }
    if (node.status?.ipam?.['operator-status']?.error) await this.setError(node, undefined);
  }

  // Reports why the node has no podCIDR and fails the reconcile, so it is retried with backoff
  // until a CIDR frees up or the conflicting claim goes away.
  private async fail(node: CiliumNode, error: string, ctx: ReconcileContext): Promise<never> {
    await this.setError(node, error);
    ctx.log.debug('podCIDR not allocated', { node: node.metadata.name, error });
    throw new Error(`CiliumNode ${node.metadata.name}: ${error}`);
  }

  private async setError(node: CiliumNode, error: string | undefined): Promise<void> {
    const name = node.metadata.name as string;
    if ((node.status?.ipam?.['operator-status']?.error || undefined) === error) return;
    try {
      await applyStatus(
        this.opts.client,
        ciliumNodes,
        // /status never creates: a node deleted meanwhile answers 404. The error is cleared to ""
        // (upstream's omitempty value): dropping the field from the apply would leave
        // operator-status null, which the schema refuses.
        { metadata: { name }, status: { ipam: { 'operator-status': { error: error ?? '' } } } },
        { fieldManager: IPAM_FIELD_MANAGER, force: true },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  // Claims are read leniently from the raw objects: a CIDR held by a node must count even when
  // something else in that node's object is malformed.
  private async restore(signal: AbortSignal): Promise<void> {
    const claims = new Map<string, string[]>();
    let cont: string | undefined;
    do {
      const q = new URLSearchParams({ limit: '500', ...(cont ? { continue: cont } : {}) });
      const page = await this.opts.client.request<RawNodeList>('GET', `${collectionPath(ciliumNodes)}?${q.toString()}`, { signal });
      for (const item of page.items) {
        const name = item.metadata?.name;
        const cidrs = item.spec?.ipam?.podCIDRs;
        if (name && Array.isArray(cidrs)) claims.set(name, cidrs.filter((c): c is string => typeof c === 'string'));
      }
      cont = page.metadata.continue || undefined;
    } while (cont !== undefined);
    // Conflicts are reported per node when its key is reconciled.
    const conflicts = this.opts.allocator.restore(claims);
    this.opts.logger.info('cluster-pool allocations restored', { nodes: this.opts.allocator.allocations().size, conflicts: conflicts.length });
  }
}
