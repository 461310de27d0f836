// Keeps each local endpoint's CiliumEndpoint in step with its record, level-triggered as upstream's
// per-endpoint sync controller is: the manager only enqueues an endpoint id after a change; a worker
// builds the object from the record as it is then and writes it, or deletes it once the endpoint is
// gone. A failed write is retried with the runtime's per-key backoff, so an apiserver outage delays
// a CEP but never loses it (other nodes and the operator's identity GC depend on it).
import type { Registry } from 'prom-client';
import { Controller, type ReconcileContext, type Reconciler } from '../../runtime/controller.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import type { RateLimiter } from '../../runtime/ratelimit.js';
import { buildCiliumEndpoint } from './cep.js';
import type { EndpointRecord } from './endpoint.js';
import type { CiliumEndpointWriter } from './manager.js';

/** Which CiliumEndpoint an endpoint writes: the pod's name, and the pod uid that owns it. */
interface CepTarget {
  namespace: string;
  name: string;
  podUid?: string;
}

export interface CiliumEndpointSyncOptions {
  writer: CiliumEndpointWriter;
  /** The endpoint's current record, or undefined once it is gone. */
  endpoint: (id: number) => EndpointRecord | undefined;
  nodeName: string;
  registry?: Registry;
  logger?: Logger;
  rateLimiter?: RateLimiter;
}

function sameTarget(a: CepTarget, b: CepTarget): boolean {
  return a.namespace === b.namespace && a.name === b.name && a.podUid === b.podUid;
}

function targetOf(ep: EndpointRecord): CepTarget {
  return { namespace: ep.namespace, name: ep.podName, ...(ep.podUid ? { podUid: ep.podUid } : {}) };
}

export class CiliumEndpointSync implements Reconciler {
  private readonly controller: Controller;
  private readonly log: Logger;
  /** The CEP each live endpoint id writes. */
  private readonly current = new Map<number, CepTarget>();
  /** CEPs of endpoints gone (or of an id's earlier pod) still to delete, by endpoint id. */
  private readonly stale = new Map<number, CepTarget[]>();

  constructor(private readonly opts: CiliumEndpointSyncOptions) {
    this.log = opts.logger ?? newLogger('endpoint-cep-sync');
    this.controller = new Controller({
      name: 'endpoint-cep-sync',
      reconciler: this,
      logger: this.log,
      ...(opts.registry ? { registry: opts.registry } : {}),
      ...(opts.rateLimiter ? { rateLimiter: opts.rateLimiter } : {}),
    });
  }

  /**
   * Marks endpoint `id`'s CEP as due. Called after the record changed or was forgotten; the CEP it
   * wrote before is remembered here, so a gone endpoint's CEP is deleted even if the id is reused.
   */
  enqueue(id: number): void {
    const ep = this.opts.endpoint(id);
    const before = this.current.get(id);
    const now = ep === undefined ? undefined : targetOf(ep);
    if (before !== undefined && (now === undefined || !sameTarget(before, now))) this.stale.set(id, [...(this.stale.get(id) ?? []), before]);
    if (now === undefined) this.current.delete(id);
    else this.current.set(id, now);
    this.controller.enqueue(String(id));
  }

  /** Runs the workers until `signal` aborts (a Runnable for the agent's Manager). */
  start(signal: AbortSignal): Promise<void> {
    return this.controller.start(signal);
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<void> {
    const id = Number(key);
    const stale = this.stale.get(id) ?? [];
    while (stale.length > 0) {
      const t = stale[0] as CepTarget;
      await this.opts.writer.delete(t.namespace, t.name, t.podUid);
      stale.shift();
    }
    this.stale.delete(id);
    const ep = this.opts.endpoint(id);
    if (ep === undefined) return;
    const written = await this.opts.writer.apply(buildCiliumEndpoint(ep, { nodeName: this.opts.nodeName }));
    if (!written) {
      // A pod re-created under this name (maybe on another node) owns it now; ours is the stale one.
      ctx.log.warn('CiliumEndpoint belongs to another pod; left alone', { endpoint: id, pod: `${ep.namespace}/${ep.podName}`, podUid: ep.podUid });
    }
  }
}
