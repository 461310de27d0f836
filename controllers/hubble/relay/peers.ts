// The relay's pool of peers (upstream pkg/hubble/relay/pool): it follows the peer service's
// Notify stream (reconnecting after retry-timeout when it breaks), keeps one gRPC channel to
// every node's observer and tells which nodes are available. A node is unavailable once its
// channel failed to connect, until it connects again (upstream: TRANSIENT_FAILURE or SHUTDOWN).
import { type Client, type ClientReadableStream, connectivityState, credentials } from '@grpc/grpc-js';
import { isIP } from 'node:net';
import type { ChangeNotification } from '../../agent/hubble/peer.js';
import type { Logger } from '../../runtime/log.js';
import { serverStream } from '../calls.js';
import { hubbleProtos } from '../protos.js';

/** Upstream's Hubble server port, for peer addresses given without one. */
const DEFAULT_PEER_PORT = 4244;
// How soon a failed channel to a node tries again at first; retry-timeout is the most it waits.
const INITIAL_RECONNECT_MS = 1_000;

export interface PeerView {
  name: string;
  address: string;
  available: boolean;
  /** observer.Observer client of the node; undefined when its address is unknown. */
  client?: Client;
}

interface PeerEntry {
  name: string;
  address: string;
  client?: Client;
  failed: boolean;
}

export interface PeerManagerOptions {
  peerService: string;
  dialTimeoutMs: number;
  retryTimeoutMs: number;
  log: Logger;
}

/** A gRPC target of a peer address: host:port (the port defaulting to 4244) or unix://. */
export function peerTarget(address: string): string {
  if (address.startsWith('unix://')) return address;
  if (address.startsWith('/') && address.endsWith('.sock')) return `unix://${address}`;
  if (isIP(address) === 4) return `${address}:${DEFAULT_PEER_PORT}`;
  if (isIP(address) === 6) return `[${address}]:${DEFAULT_PEER_PORT}`;
  return address;
}

export class PeerManager {
  private readonly peers = new Map<string, PeerEntry>();
  private notify?: ClientReadableStream<ChangeNotification>;
  /** Whether the Notify stream is open (upstream Status.PeerServiceConnected). */
  peerServiceConnected = false;

  constructor(private readonly opts: PeerManagerOptions) {}

  /** Follows the peer service until `signal` aborts, then closes every channel. */
  async run(signal: AbortSignal): Promise<void> {
    const log = this.opts.log;
    while (!signal.aborted) {
      const reason = await this.followNotify(signal);
      this.peerServiceConnected = false;
      if (signal.aborted) break;
      log.info('peer service stream ended; will try again after the retry timeout', { target: this.opts.peerService, error: reason, retryTimeoutMs: this.opts.retryTimeoutMs });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.opts.retryTimeoutMs);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
    for (const p of this.peers.values()) p.client?.close();
    this.peers.clear();
  }

  /** The known peers with their availability, sorted by name. */
  list(): PeerView[] {
    return [...this.peers.values()]
      .map((p) => ({ name: p.name, address: p.address, available: p.client !== undefined && !p.failed, ...(p.client ? { client: p.client } : {}) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private followNotify(signal: AbortSignal): Promise<string> {
    const target = peerTarget(this.opts.peerService);
    const client = new (hubbleProtos().PeerClient)(target, credentials.createInsecure());
    return new Promise<string>((resolve) => {
      let done = false;
      const finish = (reason: string) => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        client.close();
        resolve(reason);
      };
      const onAbort = () => {
        this.notify?.cancel();
        finish('stopped');
      };
      signal.addEventListener('abort', onAbort, { once: true });
      client.waitForReady(Date.now() + this.opts.dialTimeoutMs, (err) => {
        if (done) return;
        if (err) return finish(`connecting to ${target}: ${err.message}`);
        const call = serverStream<ChangeNotification>(client, 'Notify', {});
        this.notify = call;
        this.peerServiceConnected = true;
        this.opts.log.info('connected to the peer service', { target });
        call.on('data', (cn: ChangeNotification) => this.apply(cn));
        call.on('error', (e: Error) => finish(e.message));
        call.on('end', () => finish('the peer service ended the stream'));
      });
    });
  }

  private apply(cn: ChangeNotification): void {
    this.opts.log.info('received peer change notification', { name: cn.name, address: cn.address, type: cn.type });
    switch (cn.type) {
      case 'PEER_ADDED':
      case 'PEER_UPDATED':
        return this.upsert(cn.name, cn.address);
      case 'PEER_DELETED':
        return this.remove(cn.name);
    }
  }

  private upsert(name: string, address: string): void {
    const old = this.peers.get(name);
    if (old?.address === address) return;
    if (old) this.remove(name);
    const entry: PeerEntry = { name, address, failed: false };
    this.peers.set(name, entry);
    if (address === '') return;
    const target = peerTarget(address);
    const client = new (hubbleProtos().ObserverClient)(target, credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': Math.min(INITIAL_RECONNECT_MS, this.opts.retryTimeoutMs),
      'grpc.max_reconnect_backoff_ms': this.opts.retryTimeoutMs,
    });
    entry.client = client;
    this.opts.log.info('connecting', { peer: name, address: target });
    this.watch(entry, client);
  }

  // Keeps the channel connecting (a dropped connection leaves it idle otherwise) and records
  // whether it failed; a failure sticks until the channel is ready again.
  private watch(entry: PeerEntry, client: Client): void {
    const channel = client.getChannel();
    const step = () => {
      const state = channel.getConnectivityState(true);
      if (state === connectivityState.SHUTDOWN) return;
      if (state === connectivityState.TRANSIENT_FAILURE && !entry.failed) {
        entry.failed = true;
        this.opts.log.warn('peer unavailable', { peer: entry.name, address: entry.address });
      } else if (state === connectivityState.READY && entry.failed) {
        entry.failed = false;
        this.opts.log.info('peer connected again', { peer: entry.name, address: entry.address });
      }
      channel.watchConnectivityState(state, Infinity, step);
    };
    step();
  }

  private remove(name: string): void {
    const p = this.peers.get(name);
    if (p === undefined) return;
    this.peers.delete(name);
    p.client?.close();
    this.opts.log.info('disconnected', { peer: name, address: p.address });
  }
}
