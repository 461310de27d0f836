// hubble-relay's gRPC server (upstream pkg/hubble/relay/observer): observer.Observer over every
// node the peer pool knows. GetFlows fans the request out to each available node, merges their
// streams by time through a sort buffer and tells the client which nodes it reads
// (NODE_CONNECTED), which it cannot (NODE_UNAVAILABLE) and which failed on the way (NODE_ERROR);
// a node that goes away costs its flows, never the request. ServerStatus and GetNodes aggregate
// the nodes' answers, with the unavailable ones counted and named.
import { hostname } from 'node:os';
import {
  type ClientReadableStream,
  Server,
  ServerCredentials,
  type ServiceError,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { listenAddress } from '../../runtime/metrics-server.js';
import type { Logger } from '../../runtime/log.js';
import { type Timestamp, timestampOf } from '../flow-types.js';
import { serverStream, unaryCall } from '../calls.js';
import { healthService } from '../health.js';
import { hubbleProtos } from '../protos.js';
import type { RelaySettings } from './options.js';
import type { PeerView } from './peers.js';
import { SortBuffer } from './sort-buffer.js';

export type NodeState = 'NODE_CONNECTED' | 'NODE_UNAVAILABLE' | 'NODE_GONE' | 'NODE_ERROR';

/** observer.GetFlowsResponse as it passes through: whatever the node sent, plus the fields read here. */
export interface FlowsResponse {
  node_name: string;
  time: Timestamp | null;
  node_status?: { state_change: NodeState; node_names: string[]; message: string } | null;
  [field: string]: unknown;
}

interface FlowsRequest {
  number: string;
  follow: boolean;
  [field: string]: unknown;
}

interface ServerStatus {
  num_flows: string;
  max_flows: string;
  seen_flows: string;
  uptime_ns: string;
  version: string;
  flows_rate: number;
}

export interface PeerLister {
  list(): PeerView[];
  /** The peer service's Notify stream is open. */
  readonly peerServiceConnected: boolean;
}

export class RelayServer {
  private server?: Server;
  /** The TCP port the relay answers on (resolved when 0 was asked for). */
  port?: number;
  /** Names the relay in its own node_status responses (upstream: the absolute node name). */
  readonly nodeName = hostname();

  constructor(
    private readonly settings: RelaySettings,
    private readonly peers: PeerLister,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const protos = hubbleProtos();
    const server = new Server();
    server.addService(protos.observer, this.observerService());
    // Upstream: serving once the peer service is connected and some node is available.
    server.addService(protos.health, healthService(() => (this.peers.peerServiceConnected && this.peers.list().some((p) => p.available) ? 'SERVING' : 'NOT_SERVING')));
    const at = listenAddress(this.settings.listenAddress);
    const host = at.host ?? '0.0.0.0';
    const address = `${host.includes(':') ? `[${host}]` : host}:${at.port}`;
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`hubble-relay listen-address ${address}: ${err.message}`, { cause: err })) : resolve(port)));
    });
    this.server = server;
    this.log.info('hubble-relay listening', { address, port: this.port });
  }

  stop(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  private nodeStatus(state: NodeState, nodeNames: string[], message = ''): FlowsResponse {
    return { node_status: { state_change: state, node_names: nodeNames, message }, node_name: this.nodeName, time: timestampOf(Date.now()) };
  }

  private observerService(): UntypedServiceImplementation {
    const unimplemented = (name: string) => (call: ServerWritableStream<unknown, unknown>) => call.emit('error', { code: status.UNIMPLEMENTED, details: `${name} not yet implemented` });
    const reply = <T>(done: sendUnaryData<unknown>, work: Promise<T>): void =>
      void work.then(
        (res) => done(null, res),
        (err: Error) => done({ code: status.INTERNAL, details: err.message }),
      );
    return {
      GetFlows: (call: ServerWritableStream<FlowsRequest, FlowsResponse>) => this.getFlows(call),
      GetAgentEvents: unimplemented('GetAgentEvents'),
      GetDebugEvents: unimplemented('GetDebugEvents'),
      ServerStatus: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => reply(done, this.serverStatus()),
      GetNodes: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => reply(done, this.nodes()),
      GetNamespaces: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => reply(done, this.namespaces()),
    };
  }

  private getFlows(call: ServerWritableStream<FlowsRequest, FlowsResponse>): void {
    const req = call.request;
    const s = this.settings;
    const log = this.log;
    const peers = this.peers.list();
    // Never more room than the request can fill: the buffer releases its oldest only when full.
    let qlen = s.sortBufferLenMax;
    const wanted = BigInt(req.number) * BigInt(peers.length);
    if (wanted > 0n && wanted < BigInt(qlen)) qlen = Number(wanted);
    const buffer = new SortBuffer<FlowsResponse>();
    const streams = new Map<string, ClientReadableStream<FlowsResponse>>();
    const timers: NodeJS.Timeout[] = [];
    let finished = false;
    let paused = false;
    let pendingError: { res: FlowsResponse; timer: NodeJS.Timeout } | undefined;

    const finish = () => {
      if (finished) return;
      finished = true;
      if (pendingError) clearTimeout(pendingError.timer);
      for (const t of timers) clearInterval(t);
      for (const st of streams.values()) st.cancel();
      streams.clear();
    };
    // A client slower than the nodes holds the nodes' streams back (gRPC flow control), not memory.
    const out = (r: FlowsResponse) => {
      if (finished || call.cancelled) return;
      if (!call.write(r) && !paused) {
        paused = true;
        for (const st of streams.values()) st.pause();
        call.once('drain', () => {
          paused = false;
          for (const st of streams.values()) st.resume();
        });
      }
    };
    const accept = (r: FlowsResponse) => {
      if (buffer.size >= qlen) out(buffer.pop()!);
      buffer.push(r);
    };
    // Nodes failing alike within the aggregation window make one NODE_ERROR naming them all.
    const flushError = () => {
      if (pendingError === undefined) return;
      clearTimeout(pendingError.timer);
      accept(pendingError.res);
      pendingError = undefined;
    };
    const nodeError = (name: string, message: string) => {
      const pending = pendingError?.res.node_status;
      if (pending?.message === message) return void pending.node_names.push(name);
      flushError();
      pendingError = { res: this.nodeStatus('NODE_ERROR', [name], message), timer: setTimeout(flushError, s.errorAggregationWindowMs) };
    };
    const endIfDone = () => {
      if (finished || req.follow || streams.size > 0) return;
      flushError();
      for (let r = buffer.pop(); r !== undefined; r = buffer.pop()) out(r);
      finish();
      call.end();
    };
    const collect = (list: PeerView[]) => {
      const connected: string[] = [];
      const unavailable: string[] = [];
      const added: string[] = [];
      for (const p of list) {
        if (streams.has(p.name)) {
          connected.push(p.name);
          continue;
        }
        if (!p.available || p.client === undefined) {
          log.info('no connection to peer, skipping', { peer: p.name, address: p.address });
          unavailable.push(p.name);
          continue;
        }
        connected.push(p.name);
        added.push(p.name);
        const st = serverStream<FlowsResponse>(p.client, 'GetFlows', req);
        streams.set(p.name, st);
        if (paused) st.pause();
        const gone = () => {
          if (streams.get(p.name) !== st) return false;
          streams.delete(p.name);
          return true;
        };
        st.on('data', (r: FlowsResponse) => accept(r.node_name === '' ? { ...r, node_name: p.name } : r));
        // The relay cancels only streams it has already let go of: any error of one still held,
        // a cancel from a node shutting down included, is the node's.
        st.on('error', (err: ServiceError) => {
          if (!gone()) return;
          log.warn('failed to retrieve flows from peer', { peer: p.name, address: p.address, error: err.message });
          nodeError(p.name, err.details || err.message);
          endIfDone();
        });
        st.on('end', () => {
          if (gone()) endIfDone();
        });
      }
      return { connected, unavailable, added };
    };

    call.on('cancelled', finish);
    const first = collect(peers);
    if (first.connected.length > 0) out(this.nodeStatus('NODE_CONNECTED', first.connected));
    if (first.unavailable.length > 0) out(this.nodeStatus('NODE_UNAVAILABLE', first.unavailable));
    // The sorting window: what waited longer than the drain timeout leaves in time order.
    timers.push(
      setInterval(() => {
        for (const r of buffer.popOlderThan(Date.now() - s.sortBufferDrainTimeoutMs)) out(r);
      }, s.sortBufferDrainTimeoutMs),
    );
    if (req.follow) {
      // Nodes that join or come back while the client follows are read too.
      timers.push(
        setInterval(() => {
          const { added } = collect(this.peers.list());
          if (added.length > 0) out(this.nodeStatus('NODE_CONNECTED', added));
        }, s.peerUpdateIntervalMs),
      );
    }
    endIfDone();
  }

  private async serverStatus(): Promise<object> {
    const peers = this.peers.list();
    const unavailable: string[] = [];
    let numUnavailable = 0;
    const markUnavailable = (name: string) => {
      numUnavailable++;
      if (unavailable.length < this.settings.unavailableNodesReportMax) unavailable.push(name);
    };
    const answers = await Promise.all(
      peers.map(async (p) => {
        if (!p.available || p.client === undefined) return markUnavailable(p.name);
        try {
          return await unaryCall<ServerStatus>(p.client, 'ServerStatus', {}, this.settings.dialTimeoutMs);
        } catch (err) {
          this.log.warn('failed to retrieve server status', { peer: p.name, error: (err as Error).message });
          return markUnavailable(p.name);
        }
      }),
    );
    let numFlows = 0n;
    let maxFlows = 0n;
    let seenFlows = 0n;
    let uptime = 0n;
    let rate = 0;
    for (const a of answers) {
      if (a === undefined) continue;
      numFlows += BigInt(a.num_flows);
      maxFlows += BigInt(a.max_flows);
      seenFlows += BigInt(a.seen_flows);
      // The oldest node's uptime: adding them up would mean nothing.
      if (BigInt(a.uptime_ns) > uptime) uptime = BigInt(a.uptime_ns);
      rate += a.flows_rate;
    }
    return {
      num_flows: String(numFlows),
      max_flows: String(maxFlows),
      seen_flows: String(seenFlows),
      uptime_ns: String(uptime),
      num_connected_nodes: { value: peers.length - numUnavailable },
      num_unavailable_nodes: { value: numUnavailable },
      unavailable_nodes: unavailable,
      version: this.settings.version,
      flows_rate: rate,
    };
  }

  private async nodes(): Promise<object> {
    const nodes = await Promise.all(
      this.peers.list().map(async (p) => {
        const node = { name: p.name, address: p.address, tls: { enabled: false, server_name: '' } };
        if (!p.available || p.client === undefined) return { ...node, state: 'NODE_UNAVAILABLE' };
        try {
          const st = await unaryCall<ServerStatus>(p.client, 'ServerStatus', {}, this.settings.dialTimeoutMs);
          const { version, uptime_ns, max_flows, num_flows, seen_flows } = st;
          return { ...node, state: 'NODE_CONNECTED', version, uptime_ns, max_flows, num_flows, seen_flows };
        } catch (err) {
          this.log.warn('failed to retrieve server status', { peer: p.name, error: (err as Error).message });
          return { ...node, state: 'NODE_ERROR' };
        }
      }),
    );
    return { nodes };
  }

  private async namespaces(): Promise<object> {
    const seen = new Map<string, { cluster: string; namespace: string }>();
    await Promise.all(
      this.peers.list().map(async (p) => {
        if (!p.available || p.client === undefined) return;
        try {
          const res = await unaryCall<{ namespaces: { cluster: string; namespace: string }[] }>(p.client, 'GetNamespaces', {}, this.settings.dialTimeoutMs);
          for (const ns of res.namespaces) seen.set(`${ns.cluster}/${ns.namespace}`, ns);
        } catch (err) {
          this.log.warn('failed to retrieve namespaces', { peer: p.name, error: (err as Error).message });
        }
      }),
    );
    const namespaces = [...seen.values()].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.cluster.localeCompare(b.cluster));
    return { namespaces };
  }
}
