// Hubble's observer in the agent: reads every datapath event, turns it into a flow.Flow enriched
// from the agent's caches and keeps the last `capacity` in its ring; events the reader lost are a
// marker in the ring (OBSERVER_EVENTS_QUEUE), never silent. Every flow is also counted in the
// hubble_* metrics (metrics.ts, served on hubble-metrics-server) and kept in the on-disk history
// (history/). The gRPC server (server.ts) answers from the ring, and from the history for since
// older than the ring, on the unix socket and the TCP address.
import { performance } from 'node:perf_hooks';
import type { DatapathEvent } from '../../../datapath/types.js';
import { eventToFlow, type FlowContext } from '../../hubble/decode.js';
import { type Flow, type LostEventSource, timestampMs, timestampOf } from '../../hubble/flow-types.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import { MetricsServer } from '../../runtime/metrics-server.js';
import { flowContext, type ObserverSources } from './enrich.js';
import { FlowIds } from './flow-ids.js';
import { FlowHistory } from './history/store.js';
import { HubbleMetrics } from './metrics.js';
import type { HubbleSettings } from './options.js';
import type { PeerSource } from './peer.js';
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
  /** The cluster's nodes for peer.Peer Notify (peer.ts); this node alone when absent. */
  peers?: PeerSource;
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
  /** The hubble_* metrics, when hubble-metrics-server is set. */
  readonly metrics?: HubbleMetrics;
  /** The on-disk flow history, unless disabled. */
  readonly history?: FlowHistory;
  private metricsServer?: MetricsServer;
  private readonly ids = new FlowIds();
  private readonly ctx: FlowContext;
  private readonly namespaces = new Map<string, number>();
  private readonly log: Logger;

  constructor(readonly opts: HubbleObserverOptions) {
    this.ring = new FlowRing(opts.settings.capacity);
    this.ctx = flowContext(opts.sources);
    this.log = opts.logger ?? newLogger('hubble');
    this.server = new HubbleServer(this, this.log);
    const { settings } = opts;
    if (settings.metricsServer !== '') {
      this.metrics = new HubbleMetrics(settings.metrics);
      if (this.metrics.skipped.length > 0) this.log.info('hubble L7 metrics stay empty: cilium-ts has no L7 flows', { metrics: this.metrics.skipped });
    }
    if (settings.history) {
      const metrics = this.metrics;
      this.history = new FlowHistory({
        ...settings.history,
        logger: this.log,
        ...(metrics ? { onLost: (n: number) => metrics.historyFlowsLost(n), onWritten: (n: number) => metrics.historyFlowsWritten(n) } : {}),
      });
    }
  }

  /** Where the metrics are served, once they are. */
  metricsAddress() {
    return this.metricsServer?.address();
  }

  get nodeName(): string {
    return this.opts.sources.nodeName;
  }

  get clusterName(): string {
    return this.opts.sources.clusterName;
  }

  /** Decodes one event observed now and stores its flow. */
  ingest(ev: DatapathEvent, timeMs = performance.timeOrigin + performance.now()): Flow {
    const flow = eventToFlow(ev, { timeMs, uuid: this.ids.take() }, this.ctx);
    if (flow.source.namespace !== '') this.namespaces.set(flow.source.namespace, timeMs);
    if (flow.destination.namespace !== '') this.namespaces.set(flow.destination.namespace, timeMs);
    this.seenFlows++;
    this.ring.write({ time: flow.time, flow });
    this.metrics?.processFlow(flow);
    this.history?.append(flow);
    return flow;
  }

  /** Records that `count` events were lost at `source`. */
  lost(count: number, source: LostEventSource): void {
    this.lostEvents.set(source, (this.lostEvents.get(source) ?? 0) + count);
    this.metrics?.lost(source, count);
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
    await this.history?.open();
    let serving: Promise<void> | undefined;
    const stopMetrics = new AbortController();
    try {
      await this.server.start();
      if (this.metrics) {
        const metricsServer = new MetricsServer(this.metrics.registry, this.opts.settings.metricsServer, this.log);
        serving = metricsServer.run(stopMetrics.signal);
        // A metrics address that cannot be bound fails the observer, as a taken hubble port does.
        await Promise.race([serving, this.listening(metricsServer, signal)]);
        this.metricsServer = metricsServer;
      }
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
      stopMetrics.abort();
      await serving?.catch(() => undefined);
      await this.history?.close();
    }
  }

  private async listening(server: MetricsServer, signal: AbortSignal): Promise<void> {
    while (server.address() === undefined && !signal.aborted) await new Promise((r) => setTimeout(r, 5));
  }
}
