// The startup taint (upstream `agent-not-ready-taint-key`): a node registered with
// node.cilium.io/agent-not-ready keeps pods off until this agent can network them. Once the agent
// says it is ready (endpoints restored, IPAM bound, CNI configuration written) it removes every
// taint with that key, whatever its effect, and only those. The Node is watched, so a taint that
// comes later (kubelet registering after the agent started, an admin re-adding it) goes too.
//
// The write is a merge patch of spec.taints carrying the resourceVersion that was read: another
// writer's change in between (kubelet, an admin, the node lifecycle controller) makes it a 409 and
// the removal starts again from a fresh read, so their taints are never lost.
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { isConflict, isNotFound, type ApiClient } from '../../runtime/apiclient.js';
import { Controller } from '../../runtime/controller.js';
import { nodes, objectPath } from '../../runtime/kinds.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import { Resource } from '../../runtime/resource.js';
import { CACHE_SYNC_FOREVER_MS } from '../ipcache/resources.js';

/** Upstream's default agent-not-ready-taint-key. */
export const AGENT_NOT_READY_TAINT_KEY = 'node.cilium.io/agent-not-ready';

// Conflicts in a row before the reconcile fails and the controller's backoff takes over.
const CONFLICT_ATTEMPTS = 5;

export type TaintRemoval = 'removed' | 'absent' | 'node-not-found';

/**
 * Removes the taints with key `taintKey` from Node `nodeName`, leaving every other taint as it
 * is; re-reads and retries when another writer changed the Node in between.
 */
export async function removeNodeTaint(client: ApiClient, nodeName: string, taintKey: string): Promise<TaintRemoval> {
  const nodePath = objectPath(nodes, nodeName);
  for (let attempt = 1; ; attempt++) {
    let node: V1Node;
    try {
      node = await client.request<V1Node>('GET', nodePath);
    } catch (err) {
      if (isNotFound(err)) return 'node-not-found';
      throw err;
    }
    const taints = node.spec?.taints ?? [];
    const kept = taints.filter((t) => t.key !== taintKey);
    if (kept.length === taints.length) return 'absent';
    const resourceVersion = node.metadata?.resourceVersion;
    if (resourceVersion === undefined) throw new Error(`node ${nodeName}: metadata.resourceVersion missing; cannot remove taint ${taintKey} safely`);
    try {
      await client.request('PATCH', nodePath, {
        contentType: 'application/merge-patch+json',
        // null removes the field: an empty list would be stored as `taints: []`.
        body: { metadata: { resourceVersion }, spec: { taints: kept.length === 0 ? null : kept } },
      });
      return 'removed';
    } catch (err) {
      if (isNotFound(err)) return 'node-not-found';
      if (!isConflict(err) || attempt >= CONFLICT_ATTEMPTS) {
        throw new Error(`node ${nodeName}: removing taint ${taintKey} (attempt ${attempt}): ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

export interface AgentNotReadyTaintOptions {
  client: ApiClient;
  nodeName: string;
  /** agent-not-ready-taint-key; default node.cilium.io/agent-not-ready. */
  taintKey?: string;
  registry?: Registry;
  logger?: Logger;
}

export class AgentNotReadyTaint {
  readonly resource: Resource<V1Node>;
  readonly controller: Controller;
  readonly taintKey: string;
  private readonly log: Logger;
  private ready = false;

  constructor(private readonly opts: AgentNotReadyTaintOptions) {
    this.taintKey = opts.taintKey ?? AGENT_NOT_READY_TAINT_KEY;
    this.log = opts.logger ?? newLogger('node-taint');
    this.resource = new Resource<V1Node>({
      name: `node-${opts.nodeName}`,
      client: opts.client,
      type: nodes,
      fieldSelector: `metadata.name=${opts.nodeName}`,
      logger: this.log,
    });
    this.controller = new Controller({
      name: 'agent-not-ready-taint',
      reconciler: { reconcile: () => this.reconcile() },
      registry: opts.registry,
      logger: this.log,
      cacheSyncTimeoutMs: CACHE_SYNC_FOREVER_MS,
    });
    this.controller.watch(this.resource, () => [opts.nodeName]);
  }

  /** Watches the Node until `signal` aborts; removes the taint whenever it is there once markReady() was called. */
  async start(signal: AbortSignal): Promise<void> {
    this.resource.start();
    try {
      await this.controller.start(signal);
    } finally {
      await this.resource.stop();
    }
  }

  /** The agent can network pods from now on. */
  markReady(): void {
    this.ready = true;
    this.controller.enqueue(this.opts.nodeName);
  }

  private hasTaint(taints: readonly V1Taint[] | undefined): boolean {
    return (taints ?? []).some((t) => t.key === this.taintKey);
  }

  private async reconcile(): Promise<void> {
    if (!this.ready) return;
    const node = this.resource.store.get(this.opts.nodeName);
    // The watch brings the Node when kubelet registers it, and with it this key again.
    if (node === undefined || !this.hasTaint(node.spec?.taints)) return;
    const result = await removeNodeTaint(this.opts.client, this.opts.nodeName, this.taintKey);
    if (result === 'removed') this.log.info('node taint removed: agent ready', { node: this.opts.nodeName, taint: this.taintKey });
  }
}
