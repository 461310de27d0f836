// Hubble's observer in the agent: reads every datapath event, turns it into a flow.Flow enriched
// from the agent's caches and keeps the last `capacity` in its ring; events the reader lost are a
// marker in the ring (OBSERVER_EVENTS_QUEUE), never silent. The gRPC server (server.ts) answers
// from the ring on the unix socket and the TCP address.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { DatapathEvent } from '../../../datapath/types.js';
import { eventToFlow, type FlowContext } from '../../hubble/decode.js';
import { type Flow, type LostEventSource, timestampMs, timestampOf } from '../../hubble/flow-types.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import { flowContext, type ObserverSources } from './enrich.js';
import type { HubbleSettings } from './options.js';
import { FlowRing } from './ring.js';
import { HubbleServer } from './server.js';

/** Datapath events from now on until `signal` aborts; `onLost` counts what the reader lost. */
export type EventSource = (signal: AbortSignal, onLost: (count: number) => void, maxQueued?: number) => AsyncIterable<DatapathEvent>;

export interface HubbleObserverOptions {
  settings: HubbleSettings;
  sources: ObserverSources;
  events: EventSource;
  /** This node's address as peers see it (peer.Peer Notify). */
  nodeAddress: string;
  version: string;
  logger?: Logger;
}

// How long GetNamespaces remembers a namespace after its last flow (upstream: 1 h).
const NAMESPACE_TTL_MS = 60 * 60 * 1000;
const FLOW_RATE_WINDOW_MS = 60_000;

export class HubbleObserver {
  readonly ring: FlowRing;
  readonly startedAt = Date.now();
  /** Flows decoded since the start (upstream seen_flows). */
  seenFlows = 0;
  /** Datapath events lost before decoding, by source. */
  readonly lostEvents = new Map<LostEventSource, number>();
  readonly server: HubbleServer;
  private readonly ctx: FlowContext;
  private readonly namespaces = new Map<string, number>();
  private readonly log: Logger;

  constructor(readonly opts: HubbleObserverOptions) {
    this.ring = new FlowRing(opts.settings.capacity);
    this.ctx = flowContext(opts.sources);
    this.log = opts.logger ?? newLogger('hubble');
    this.server = new HubbleServer(this, this.log);
  }

  get nodeName(): string {
    return this.opts.sources.nodeName;
  }

  get clusterName(): string {
    return this.opts.sources.clusterName;
  }

  /** Decodes one event observed now and stores its flow. */
  ingest(ev: DatapathEvent, timeMs = performance.timeOrigin + performance.now()): Flow {
    const flow = eventToFlow(ev, { timeMs, uuid: randomUUID() }, this.ctx);
    for (const ns of [flow.source.namespace, flow.destination.namespace]) if (ns !== '') this.namespaces.set(ns, timeMs);
    this.seenFlows++;
    this.ring.write({ time: flow.time, flow });
    return flow;
  }

  /** Records that `count` events were lost at `source`. */
  lost(count: number, source: LostEventSource): void {
    this.lostEvents.set(source, (this.lostEvents.get(source) ?? 0) + count);
    const now = timestampOf(Date.now());
    this.ring.write({ time: now, lost: { source, num_events_lost: String(count), first: now, last: now } });
    this.log.warn('hubble lost events', { source, count });
  }

  /** Namespaces of the flows of the last hour, sorted. */
  namespacesSeen(now = Date.now()): string[] {
    for (const [ns, at] of this.namespaces) if (now - at > NAMESPACE_TTL_MS) this.namespaces.delete(ns);
    return [...this.namespaces.keys()].sort();
  }

  /** Flows per second over the last minute the ring covers. */
  flowRate(now = Date.now()): number {
    let count = 0;
    for (let seq = this.ring.head - 1; seq >= this.ring.oldest; seq--) {
      const ev = this.ring.at(seq)!;
      if (timestampMs(ev.time) < now - FLOW_RATE_WINDOW_MS) break;
      if (ev.flow !== undefined) count++;
    }
    return count / (FLOW_RATE_WINDOW_MS / 1000);
  }

  /** Serves and observes until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.server.start();
    try {
      const onLost = (count: number) => this.lost(count, 'OBSERVER_EVENTS_QUEUE');
      for await (const ev of this.opts.events(signal, onLost, this.opts.settings.queueSize)) {
        try {
          this.ingest(ev);
        } catch (err) {
          // A lookup that throws costs this flow, named in the log, not the observer.
          this.log.warn('hubble could not decode a datapath event', { error: (err as Error).message, type: ev.type, endpoint: ev.endpointId });
        }
      }
    } finally {
      this.server.stop();
    }
  }
}
