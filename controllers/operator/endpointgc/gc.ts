// CiliumEndpoint garbage collection (upstream operator/endpointgc): every
// cilium-endpoint-gc-interval, a CiliumEndpoint whose Pod is gone or finished is deleted. The Pod
// is the CEP's Pod owner reference, else the Pod of the CEP's own name (the agent names CEPs after
// their pod); a CEP owned by anything else is left alone. Beyond upstream, a Pod of that name with
// another uid than the owner reference is a new pod, so the CEP of the old one goes. As upstream,
// a CEP whose Pod is not found waits one more run (its Pod's add event may simply not have arrived
// yet), and the delete carries the CEP's uid as precondition: a CEP re-created meanwhile stays.
import type { Registry } from 'prom-client';
import type { CiliumEndpoint } from '../../../crds/gen/index.js';
import { isConflict, isNotFound, type ApiClient } from '../../runtime/apiclient.js';
import { ciliumEndpoints, objectPath } from '../../runtime/kinds.js';
import type { Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import { operatorMetrics, type OperatorMetrics } from '../metrics.js';
import { runPeriodically } from '../periodic.js';
import type { Pod } from '../resources.js';

export interface EndpointGCOptions {
  client: ApiClient;
  endpoints: Resource<CiliumEndpoint>;
  pods: Resource<Pod>;
  /** cilium-endpoint-gc-interval */
  intervalMs: number;
  registry: Registry;
  logger: Logger;
}

export interface Staleness {
  reason: string;
  /** False when the Pod was only not found: deleted on the next run if still so. */
  confirmed: boolean;
}

/** Why `cep` is stale given the pods, or undefined when it is not. */
export function staleness(cep: CiliumEndpoint, podByKey: (key: string) => Pod | undefined): Staleness | undefined {
  const ns = cep.metadata.namespace ?? '';
  const owners = cep.metadata.ownerReferences ?? [];
  if (owners.some((o) => o.kind !== 'Pod')) return undefined;
  const owner = owners[0];
  const podName = owner?.name ?? cep.metadata.name ?? '';
  const pod = podByKey(`${ns}/${podName}`);
  if (pod === undefined) return { reason: `pod ${ns}/${podName} does not exist`, confirmed: false };
  if (owner !== undefined && pod.metadata.uid !== owner.uid) {
    return { reason: `pod ${ns}/${podName} is a new pod (uid ${pod.metadata.uid}, CEP owner uid ${owner.uid})`, confirmed: true };
  }
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return { reason: `pod ${ns}/${podName} has finished (${phase})`, confirmed: true };
  return undefined;
}

export class EndpointGC {
  private readonly metrics: OperatorMetrics;
  /** CEPs whose Pod was not found in the previous run. */
  private candidates = new Set<string>();

  constructor(private readonly opts: EndpointGCOptions) {
    this.metrics = operatorMetrics(opts.registry);
  }

  run(signal: AbortSignal): Promise<void> {
    const { endpoints, pods, intervalMs, logger } = this.opts;
    return runPeriodically({ name: 'CiliumEndpoint GC', reads: [endpoints, pods], intervalMs, logger }, (s) => this.runOnce(s), signal);
  }

  /** One pass; returns the keys of the CEPs it deleted. */
  async runOnce(signal?: AbortSignal): Promise<string[]> {
    const deleted: string[] = [];
    const next = new Set<string>();
    for (const cep of this.opts.endpoints.store.list()) {
      if (signal?.aborted) break;
      const stale = staleness(cep, (k) => this.opts.pods.store.get(k));
      if (stale === undefined) continue;
      const key = `${cep.metadata.namespace}/${cep.metadata.name}`;
      if (!stale.confirmed && !this.candidates.has(key)) {
        next.add(key);
        continue;
      }
      const { name, namespace, uid } = cep.metadata;
      try {
        await this.opts.client.request('DELETE', objectPath(ciliumEndpoints, name as string, namespace), {
          body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid } },
          signal,
        });
        this.metrics.endpointGCObjects.inc({ outcome: 'success' });
        deleted.push(key);
        this.opts.logger.info('CiliumEndpoint garbage-collected', { endpoint: key, reason: stale.reason });
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) continue;
        this.metrics.endpointGCObjects.inc({ outcome: 'fail' });
        this.opts.logger.warn('CiliumEndpoint GC: delete failed', { endpoint: key, error: (err as Error).message });
      }
    }
    this.candidates = next;
    return deleted;
  }
}
