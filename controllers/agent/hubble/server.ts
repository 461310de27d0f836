// The observer's gRPC server (@grpc/grpc-js): observer.Observer, peer.Peer and the standard
// health service, on the unix socket hubble-socket-path and on hubble-listen-address.
import { once } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { compileFieldMask } from '../../hubble/field-mask.js';
import { compileFilters } from '../../hubble/filter.js';
import { type FlowFilter, type HubbleEvent, type Timestamp, timestampMs } from '../../hubble/flow-types.js';
import { healthService } from '../../hubble/health.js';
import { fieldsAt, hubbleProtos } from '../../hubble/protos.js';
import { listenAddress } from '../../runtime/metrics-server.js';
import type { Logger } from '../../runtime/log.js';
import { FlowsQueryError, readFlowsWithHistory } from './flows-reader.js';
import type { HubbleObserver } from './observer.js';
import { type ChangeNotification, selfPeer, serveNotify } from './peer.js';

export { OBSERVER_HEALTH_SERVICE } from '../../hubble/health.js';

interface GetFlowsRequest {
  number: string;
  first: boolean;
  follow: boolean;
  whitelist: FlowFilter[];
  blacklist: FlowFilter[];
  since: Timestamp | null;
  until: Timestamp | null;
  field_mask: { paths: string[] } | null;
}

interface StreamRequest {
  follow: boolean;
}

class RequestError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

// uint64 counts arrive as decimal strings; "all" is 2^64-1, which no ring reaches.
function count(text: string): number {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

/** Writes honouring flow control; false once the client is gone. */
async function send<T>(call: ServerWritableStream<unknown, T>, msg: T): Promise<boolean> {
  if (call.cancelled) return false;
  if (!call.write(msg)) {
    // The listener that did not fire goes too: a long stream waits for drain many times.
    const done = new AbortController();
    const waits = [once(call, 'drain', { signal: done.signal }), once(call, 'cancelled', { signal: done.signal })].map((p) => p.catch(() => undefined));
    await Promise.race(waits);
    done.abort();
  }
  return !call.cancelled;
}

function abortOnCancel(call: { on(event: 'cancelled', fn: () => void): unknown }): AbortController {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  return ac;
}

export class HubbleServer {
  private server?: Server;
  /** Where TCP answers once started (port resolved when 0 was asked for). */
  tcpPort?: number;

  constructor(
    private readonly observer: HubbleObserver,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { settings } = this.observer.opts;
    const protos = hubbleProtos();
    const server = new Server();
    server.addService(protos.observer, this.observerService());
    server.addService(protos.peer, this.peerService());
    server.addService(protos.health, healthService(() => 'SERVING'));
    const bind = (address: string) =>
      new Promise<number>((resolve, reject) => {
        server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`hubble server on ${address}: ${err.message}`, { cause: err })) : resolve(port)));
      });
    try {
      mkdirSync(path.dirname(settings.socketPath), { recursive: true });
      rmSync(settings.socketPath, { force: true });
      await bind(`unix://${settings.socketPath}`);
      if (settings.listenAddress !== '') {
        const at = listenAddress(settings.listenAddress);
        const host = at.host ?? '0.0.0.0';
        this.tcpPort = await bind(`${host.includes(':') ? `[${host}]` : host}:${at.port}`);
      }
    } catch (err) {
      server.forceShutdown();
      throw err;
    }
    this.server = server;
    this.log.info('hubble server listening', { socket: settings.socketPath, tcp: this.tcpPort });
  }

  /** Ends every call (followers included) and closes the listeners. */
  stop(): void {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.forceShutdown();
    rmSync(this.observer.opts.settings.socketPath, { force: true });
  }

  private observerService(): UntypedServiceImplementation {
    const o = this.observer;
    return {
      GetFlows: (call: ServerWritableStream<GetFlowsRequest, unknown>) => {
        void this.getFlows(call).catch((err: Error) => {
          const code = err instanceof RequestError ? err.code : err instanceof FlowsQueryError ? status.INVALID_ARGUMENT : status.INTERNAL;
          if (code === status.INTERNAL) this.log.error('hubble GetFlows failed', { error: err.message });
          call.emit('error', { code, details: err.message });
        });
      },
      GetAgentEvents: (call: ServerWritableStream<StreamRequest, unknown>) => this.emptyStream(call),
      GetDebugEvents: (call: ServerWritableStream<StreamRequest, unknown>) => this.emptyStream(call),
      ServerStatus: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => {
        done(null, {
          num_flows: String(o.ring.length),
          max_flows: String(o.ring.capacity),
          seen_flows: String(o.seenFlows),
          uptime_ns: String(BigInt(Date.now() - o.startedAt) * 1_000_000n),
          version: o.opts.version,
          flows_rate: o.flowRate(),
        });
      },
      GetNodes: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => {
        done(null, {
          nodes: [
            {
              name: o.nodeName,
              version: o.opts.version,
              address: o.opts.nodeAddress,
              state: 'NODE_CONNECTED',
              uptime_ns: String(BigInt(Date.now() - o.startedAt) * 1_000_000n),
              num_flows: String(o.ring.length),
              max_flows: String(o.ring.capacity),
              seen_flows: String(o.seenFlows),
            },
          ],
        });
      },
      GetNamespaces: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => {
        done(null, { namespaces: o.namespacesSeen().map((namespace) => ({ cluster: o.clusterName, namespace })) });
      },
    };
  }

  private async getFlows(call: ServerWritableStream<GetFlowsRequest, unknown>): Promise<void> {
    const req = call.request;
    const invalid = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        throw new RequestError(status.INVALID_ARGUMENT, (err as Error).message);
      }
    };
    const matches = invalid(() => compileFilters(req.whitelist, req.blacklist));
    const mask = invalid(() => compileFieldMask(req.field_mask?.paths ?? [], (p) => fieldsAt('flow.Flow', p)));
    const ac = abortOnCancel(call);
    const nodeName = this.observer.nodeName;
    const query = {
      number: count(req.number),
      first: req.first,
      follow: req.follow,
      matches,
      ...(req.since ? { sinceMs: timestampMs(req.since) } : {}),
      ...(req.until ? { untilMs: timestampMs(req.until) } : {}),
    };
    for await (const ev of readFlowsWithHistory(this.observer.ring, this.observer.history, query, ac.signal)) {
      if (!(await send(call, this.response(ev, nodeName, mask)))) return;
    }
    call.end();
  }

  private response(ev: HubbleEvent, nodeName: string, mask: ReturnType<typeof compileFieldMask>): object {
    if (ev.flow !== undefined) return { flow: mask ? mask(ev.flow) : ev.flow, node_name: ev.flow.node_name, time: ev.time };
    return { lost_events: ev.lost, node_name: nodeName, time: ev.time };
  }

  // No agent or debug events are recorded: a request ends at once, a follower waits for none.
  private emptyStream(call: ServerWritableStream<StreamRequest, unknown>): void {
    if (!call.request.follow) return void call.end();
    call.on('cancelled', () => call.end());
  }

  private peerService(): UntypedServiceImplementation {
    return {
      Notify: (call: ServerWritableStream<unknown, ChangeNotification>) => serveNotify(call, this.observer.opts.peers ?? selfPeer(this.observer.nodeName, this.observer.opts.nodeAddress)),
    };
  }
}
