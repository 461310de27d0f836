// The agent's own CiliumNode (upstream pkg/nodediscovery + the cluster-pool half of pkg/ipam on the
// agent): it applies the node's addresses under its own field manager, leaving spec.ipam.podCIDRs
// to the operator; waits for that podCIDR; allocates the router IP and then the health IP in it;
// and mirrors the pool's allocations to status.ipam.used, at most once per
// ipam-cilium-node-update-rate. One key, so every change coalesces: a burst of pod allocations costs
// one status write per interval, and a write that failed or was lost (apiserver away, object
// deleted) is redone when the watch shows the object differs from what the node holds.
import { isIPv4 } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { Registry } from 'prom-client';
import type { CiliumNode, NodeAddress } from '../../../crds/gen/index.js';
import { validateCiliumNode } from '../../../crds/validation.js';
import type { ApiClient } from '../../runtime/apiclient.js';
import { Controller } from '../../runtime/controller.js';
import type { EventRecorder } from '../../runtime/events.js';
import { ciliumNodes } from '../../runtime/kinds.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import { apply, applyStatus } from '../../runtime/ssa.js';
import { hostScopeIpam, type EndpointIpam } from '../endpoint/ipam.js';
import { HostScopePool, OWNER_HEALTH, OWNER_ROUTER, type AllocationIP } from '../ipam/pool.js';
import { CACHE_SYNC_FOREVER_MS, ciliumNodeResource, InvalidObjectReporter } from '../ipcache/resources.js';

/** Upstream's ipam-cilium-node-update-rate default. */
export const DEFAULT_NODE_UPDATE_INTERVAL_MS = 15_000;

export interface NodeRegistrationOptions {
  client: ApiClient;
  nodeName: string;
  /** The address other nodes reach this one at: spec.addresses InternalIP. */
  nodeIP: string;
  /** Least time between two status.ipam.used writes (ipam-cilium-node-update-rate). */
  statusUpdateIntervalMs?: number;
  events?: EventRecorder;
  registry?: Registry;
  logger?: Logger;
}

/** What the node's podCIDR gave it: the pods' gateway (cilium_host) and the health endpoint. */
export interface NodeAddressing {
  podCIDR: string;
  routerIP: string;
  healthIP: string;
}

export function fieldManagerOf(nodeName: string): string {
  return `cilium-agent-${nodeName}`;
}

export class NodeRegistration {
  readonly resource: Resource<CiliumNode>;
  readonly controller: Controller;
  private readonly log: Logger;
  private readonly reporter: InvalidObjectReporter;
  private readonly intervalMs: number;
  private pool?: HostScopePool;
  private addressing?: NodeAddressing;
  private readonly waiters: ((a: NodeAddressing) => void)[] = [];
  private lastStatusWrite = -Infinity;
  // Status waits for restore(): written earlier, it would drop the pods of before a restart.
  private restored = false;

  constructor(private readonly opts: NodeRegistrationOptions) {
    if (!isIPv4(opts.nodeIP)) throw new Error(`node ${opts.nodeName}: node IP ${JSON.stringify(opts.nodeIP)} is not an IPv4 address`);
    this.log = opts.logger ?? newLogger('node');
    this.intervalMs = opts.statusUpdateIntervalMs ?? DEFAULT_NODE_UPDATE_INTERVAL_MS;
    this.reporter = new InvalidObjectReporter(opts.events);
    this.resource = ciliumNodeResource(
      `ciliumnode-${opts.nodeName}`,
      { client: opts.client, fieldSelector: `metadata.name=${opts.nodeName}`, logger: this.log },
      this.reporter,
    );
    this.controller = new Controller({
      name: 'node-registration',
      reconciler: { reconcile: () => this.reconcile() },
      registry: opts.registry,
      logger: this.log,
      cacheSyncTimeoutMs: CACHE_SYNC_FOREVER_MS,
    });
    this.controller.watch(this.resource, () => [opts.nodeName]);
  }

  /** Watches the node and keeps it registered until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    this.resource.start();
    this.controller.enqueue(this.opts.nodeName);
    try {
      await this.controller.start(signal);
    } finally {
      await this.resource.stop();
    }
  }

  /** Resolves once the operator gave the node a podCIDR and the router and health IPs are allocated. */
  waitForPodCIDR(signal?: AbortSignal): Promise<NodeAddressing> {
    if (this.addressing !== undefined) return Promise.resolve(this.addressing);
    return new Promise((resolve, reject) => {
      const abort = () => reject(new Error(`node ${this.opts.nodeName}: stopped waiting for spec.ipam.podCIDRs: ${String(signal?.reason)}`));
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      this.waiters.push((a) => {
        signal?.removeEventListener('abort', abort);
        resolve(a);
      });
    });
  }

  /** Pod allocations for the endpoint manager; each change is mirrored to status.ipam.used. */
  ipam(): EndpointIpam {
    const inner = hostScopeIpam(this.readyPool('ipam'));
    return {
      allocate: (owner) => this.changed(inner.allocate(owner)),
      claim: (ip, owner) => this.changed(inner.claim(ip, owner)),
      release: (ip) => this.changed(inner.release(ip)),
    };
  }

  /**
   * Takes back the allocations from before a restart that no one claimed through ipam() (router
   * and health come from status); `{}` when there are none. Call it once the endpoint manager has
   * restored its endpoints: status.ipam.used is written only from then on.
   */
  restore(used: Readonly<Record<string, AllocationIP>>): void {
    this.readyPool('restore').restore(used);
    this.restored = true;
    this.controller.enqueue(this.opts.nodeName);
  }

  /** The pool's allocations now, in status.ipam.used's shape. */
  used(): Record<string, AllocationIP> {
    return this.readyPool('used').used();
  }

  private readyPool(what: string): HostScopePool {
    if (this.pool === undefined) throw new Error(`node ${this.opts.nodeName}: ${what} before the podCIDR is known (waitForPodCIDR first)`);
    return this.pool;
  }

  private changed<T>(result: T): T {
    this.controller.enqueue(this.opts.nodeName);
    return result;
  }

  private desiredSpec(): Pick<CiliumNode['spec'], 'addresses' | 'health'> {
    const addresses: NodeAddress[] = [{ type: 'InternalIP', ip: this.opts.nodeIP }];
    if (this.addressing) addresses.push({ type: 'CiliumInternalIP', ip: this.addressing.routerIP });
    return this.addressing ? { addresses, health: { ipv4: this.addressing.healthIP } } : { addresses };
  }

  private async reconcile(): Promise<{ requeueAfter?: number } | void> {
    const name = this.opts.nodeName;
    let node = this.resource.store.get(name);
    if (node !== undefined && this.pool === undefined) this.buildPool(node);
    node = await this.ensureSpec(node);
    if (node === undefined) return;
    if (this.pool === undefined) {
      // The podCIDR may have come with the object just applied; then its addresses go in at once.
      this.buildPool(node);
      if (this.pool === undefined) return;
      node = await this.ensureSpec(node);
      if (node === undefined) return;
    }
    if (!this.restored) return;
    const used = this.pool.used();
    if (isDeepStrictEqual(node.status?.ipam?.used ?? {}, used)) return;
    const wait = this.lastStatusWrite + this.intervalMs - Date.now();
    if (wait > 0) return { requeueAfter: wait };
    this.lastStatusWrite = Date.now();
    await applyStatus<CiliumNode>(
      this.opts.client,
      ciliumNodes,
      { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name }, spec: {}, status: { ipam: { used } } },
      { fieldManager: fieldManagerOf(name) },
    );
    this.log.debug('status.ipam.used written', { node: name, used: Object.keys(used).length });
  }

  /**
   * Applies the node's addresses when `node` (absent: not created yet) lacks them; resolves to the
   * object as it now stands, or undefined when another writer left it malformed (the watch has
   * reported it and brings the fix).
   */
  private async ensureSpec(node: CiliumNode | undefined): Promise<CiliumNode | undefined> {
    const name = this.opts.nodeName;
    const desired = this.desiredSpec();
    if (node !== undefined && isDeepStrictEqual(node.spec.addresses, desired.addresses) && node.spec.health?.ipv4 === desired.health?.ipv4) return node;
    const applied = await apply<CiliumNode>(
      this.opts.client,
      ciliumNodes,
      { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name }, spec: desired },
      { fieldManager: fieldManagerOf(name) },
    );
    this.log.info('CiliumNode applied', { node: name, addresses: desired.addresses, health: desired.health?.ipv4 });
    const checked = validateCiliumNode(applied);
    return checked.ok ? checked.value : undefined;
  }

  // The first IPv4 podCIDR the operator set; router and health keep the addresses status recorded
  // before a restart when they are still in it.
  private buildPool(node: CiliumNode): void {
    const cidrs = node.spec.ipam?.podCIDRs ?? [];
    const index = cidrs.findIndex((c) => !c.includes(':'));
    if (index < 0) return;
    let pool: HostScopePool;
    try {
      pool = new HostScopePool(cidrs[index] as string);
    } catch (err) {
      this.reporter.report(node, [{ path: `spec.ipam.podCIDRs[${index}]`, message: (err as Error).message }]);
      return;
    }
    const previous = node.status?.ipam?.used ?? {};
    const own = (owner: string) => Object.entries(previous).find(([, a]) => a?.owner === owner)?.[0];
    const restored = new Map<string, string>();
    for (const owner of [OWNER_ROUTER, OWNER_HEALTH]) {
      const ip = own(owner);
      if (ip === undefined) continue;
      try {
        pool.restore({ [ip]: { owner } });
        restored.set(owner, ip);
      } catch (err) {
        this.log.warn('previous address not reusable, allocating', { owner, ip, error: (err as Error).message });
      }
    }
    const routerIP = restored.get(OWNER_ROUTER) ?? pool.allocate(OWNER_ROUTER);
    const healthIP = restored.get(OWNER_HEALTH) ?? pool.allocate(OWNER_HEALTH);
    this.pool = pool;
    this.addressing = { podCIDR: pool.cidr, routerIP, healthIP };
    this.log.info('podCIDR received', { node: node.metadata.name, ...this.addressing });
    for (const w of this.waiters.splice(0)) w(this.addressing);
  }
}
