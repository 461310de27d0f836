// The Prometheus endpoint served apart from health (upstream's prometheus-serve-addr and
// operator-prometheus-serve-addr): every replica serves it, leader or not.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './log.js';

export interface ListenAddress {
  host?: string;
  port: number;
}

/** Reads a Go-style listen address: ":9963", "localhost:9234", "[::1]:9234". */
export function listenAddress(addr: string): ListenAddress {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? undefined : host, port: Number(addr.slice(i + 1)) };
}

/** Serves `registry` on GET /metrics at `addr` until `signal` aborts. */
export class MetricsServer {
  private server?: http.Server;

  constructor(
    private readonly registry: Registry,
    private readonly addr: string,
    private readonly log?: Logger,
  ) {}

  /** Where it listens, once it does. */
  address(): AddressInfo | undefined {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  }

  async run(signal: AbortSignal): Promise<void> {
    const server = http.createServer((req, res) => {
      if ((req.url ?? '/').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found');
        return;
      }
      this.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'Content-Type': this.registry.contentType });
          res.end(body);
        },
        (err: Error) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(err.message);
        },
      );
    });
    const at = listenAddress(this.addr);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`metrics server on ${this.addr}: ${err.message}`, { cause: err })));
      server.listen(at.port, at.host, () => resolve());
    });
    this.server = server;
    this.log?.info('metrics server listening', { address: server.address() });
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
