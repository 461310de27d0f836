// CiliumNode garbage collection, as upstream's operator/watchers/cilium_node_gc.go does it: every
// nodes-gc-interval, a CiliumNode without a core Node of its name becomes a candidate; a candidate
// still without its Node one interval later is deleted. Like upstream it keeps CiliumNodes that
// have owner references (Kubernetes collects those) or the annotation cilium.io/do-not-gc=true.
// Upstream does NOT require that the Node once existed, and neither do we: a cluster whose agents
// register CiliumNodes without Node objects (our local cluster) must annotate them do-not-gc, or
// run without this GC.
import type { CiliumNode } from '../../../crds/gen/index.js';
import { isConflict, isNotFound, type ApiClient } from '../../runtime/apiclient.js';
import { ciliumNodes, objectPath } from '../../runtime/kinds.js';
import type { Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import { runPeriodically } from '../periodic.js';
import type { Node } from '../resources.js';

export const SKIP_GC_ANNOTATION = 'cilium.io/do-not-gc';

export interface NodeGCOptions {
  client: ApiClient;
  ciliumNodes: Resource<CiliumNode>;
  nodes: Resource<Node>;
  /** nodes-gc-interval */
  intervalMs: number;
  logger: Logger;
  now?: () => number;
}

export class NodeGC {
  /** Candidate node → when it was first seen without its Node. */
  private readonly candidates = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: NodeGCOptions) {
    this.now = opts.now ?? Date.now;
  }

  run(signal: AbortSignal): Promise<void> {
    const { ciliumNodes: cns, nodes, intervalMs, logger } = this.opts;
    return runPeriodically({ name: 'CiliumNode GC', reads: [cns, nodes], intervalMs, logger }, (s) => this.runOnce(s), signal);
  }

  /** One mark-and-sweep pass; returns the CiliumNodes it deleted. */
  async runOnce(signal?: AbortSignal): Promise<string[]> {
    const deleted: string[] = [];
    const now = this.now();
    const present = new Set(this.opts.ciliumNodes.store.keys());
    for (const name of this.candidates.keys()) if (!present.has(name)) this.candidates.delete(name);
    for (const cn of this.opts.ciliumNodes.store.list()) {
      const name = cn.metadata.name as string;
      const keep =
        this.opts.nodes.store.has(name) ||
        (cn.metadata.ownerReferences?.length ?? 0) > 0 ||
        cn.metadata.annotations?.[SKIP_GC_ANNOTATION]?.toLowerCase() === 'true';
      if (keep) {
        this.candidates.delete(name);
        continue;
      }
      const since = this.candidates.get(name);
      if (since === undefined) {
        this.candidates.set(name, now);
        this.opts.logger.info('CiliumNode without Node: GC candidate', { node: name });
        continue;
      }
      if (now - since < this.opts.intervalMs) continue;
      try {
        await this.opts.client.request('DELETE', objectPath(ciliumNodes, name), {
          body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: cn.metadata.uid } },
          signal,
        });
        deleted.push(name);
        this.opts.logger.info('CiliumNode garbage-collected: its Node is gone', { node: name });
      } catch (err) {
        if (!isNotFound(err) && !isConflict(err)) throw err;
      }
      this.candidates.delete(name);
    }
    return deleted;
  }
}
