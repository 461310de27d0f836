// Kubernetes Events for what users must see (`kubectl describe`, `kubectl get events`).
// core/v1 Events, as client-go's record.EventRecorder writes them for upstream's operator and
// agent: a repeat of the same event on the same object bumps count and lastTimestamp on one
// Event instead of creating another, so a retry loop cannot flood etcd. (events.k8s.io/v1 would
// need its series bookkeeping for the same effect, and shows no differently in kubectl.)
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { isNotFound, type ApiClient } from './apiclient.js';
import { kubeTime } from './conditions.js';
import { collectionPath, coreEvents, objectPath, type KubeObject } from './kinds.js';
import { newLogger, type Logger } from './log.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  client: ApiClient;
  /** source.component and reportingComponent, e.g. "cilium-operator". */
  component: string;
  /** reportingInstance and source.host; default the host name. */
  instance?: string;
  logger?: Logger;
}

interface Recorded {
  namespace: string;
  name: string;
  count: number;
}

// client-go keeps 4096 events for deduplication.
const cacheSize = 4096;

export class EventRecorder {
  private readonly recent = new Map<string, Recorded>();
  private readonly log: Logger;
  private readonly instance: string;

  constructor(private readonly opts: EventRecorderOptions) {
    this.log = opts.logger ?? newLogger('events');
    this.instance = opts.instance ?? hostname();
  }

  /**
   * Records an event about `obj`. Never rejects: an event is worth less than the work that
   * reports it, so a failed write is logged and dropped.
   */
  async event(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const meta = obj.metadata ?? {};
    const dedupKey = [meta.uid ?? `${meta.namespace}/${meta.name}`, type, reason, message].join('\u0000');
    const now = kubeTime(new Date());
    try {
      const seen = this.recent.get(dedupKey);
      if (seen !== undefined) {
        try {
          await this.opts.client.request('PATCH', objectPath(coreEvents, seen.name, seen.namespace), {
            body: { count: seen.count + 1, lastTimestamp: now },
            contentType: 'application/merge-patch+json',
          });
          seen.count++;
          this.touch(dedupKey, seen);
          return;
        } catch (err) {
          // Expired (events live one hour by default): start a new one.
          if (!isNotFound(err)) throw err;
          this.recent.delete(dedupKey);
        }
      }
      const namespace = meta.namespace || 'default';
      const name = `${meta.name ?? 'unnamed'}.${(BigInt(Date.now()) * 1_000_000n + BigInt(randomInt(1_000_000))).toString(16)}`;
      await this.opts.client.request('POST', collectionPath(coreEvents, namespace), {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resourceVersion: meta.resourceVersion,
          },
          type,
          reason,
          message,
          source: { component: this.opts.component, host: this.instance },
          reportingComponent: this.opts.component,
          reportingInstance: this.instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.touch(dedupKey, { namespace, name, count: 1 });
    } catch (err) {
      this.log.warn('event not recorded', { object: `${meta.namespace ?? ''}/${meta.name ?? ''}`, reason, error: (err as Error).message });
    }
  }

  private touch(key: string, rec: Recorded): void {
    this.recent.delete(key);
    this.recent.set(key, rec);
    if (this.recent.size > cacheSize) this.recent.delete(this.recent.keys().next().value as string);
  }
}
