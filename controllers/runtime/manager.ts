// The Manager runs one process's parts: resources, controllers and other runnables (those marked
// leaderElected only while holding the Lease), and an HTTP server with /healthz, /readyz and
// /metrics. It stops on stop() or SIGTERM/SIGINT: runnables stop and drain within a deadline,
// then the Lease is released, then the watches close.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Controller } from './controller.js';
import type { KubeObject } from './kinds.js';
import { LeaderElector, type LeaderElectionOptions } from './leaderelection.js';
import { newLogger, type Logger } from './log.js';
import type { Resource, ResourceHealth } from './resource.js';

/** A part that runs until `signal` aborts and resolves once it has stopped. */
export type Runnable = (signal: AbortSignal) => Promise<void>;

export interface ManagerOptions {
  /** The component, e.g. "cilium-operator". */
  name: string;
  registry: Registry;
  logger?: Logger;
  /** Serve /healthz, /readyz, /metrics here; port 0 picks a free one. No server when absent. */
  health?: { host?: string; port: number };
  /** Needed when any part is leaderElected. */
  leaderElection?: Omit<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading' | 'logger'>;
  /** How long stopping runnables may take before the manager moves on; default 30 s. */
  shutdownTimeoutMs?: number;
}

interface Part {
  name: string;
  run: Runnable;
  leaderElected: boolean;
}

export interface HealthReport {
  ok: boolean;
  unsynced: string[];
  resources: ResourceHealth[];
}

export class Manager {
  private readonly resources: Resource<KubeObject>[] = [];
  private readonly parts: Part[] = [];
  private readonly log: Logger;
  private readonly stopper = new AbortController();
  private server?: http.Server;
  private elector?: LeaderElector;
  private failure?: Error;
  private readonly checks: Array<{ name: string; ready: () => boolean }> = [];

  constructor(private readonly opts: ManagerOptions) {
    this.log = opts.logger ?? newLogger(opts.name);
  }

  addResource<T extends KubeObject>(resource: Resource<T>): this {
    this.resources.push(resource as unknown as Resource<KubeObject>);
    return this;
  }

  /** A controller runs only while leading unless `leaderElected` is false (default true when election is configured). */
  addController(controller: Controller, opts: { leaderElected?: boolean } = {}): this {
    return this.add(`controller/${controller.name}`, (signal) => controller.start(signal), opts);
  }

  /**
   * A readiness condition beyond synced watches (e.g. "endpoints restored"): /healthz answers 503
   * and lists `name` under unsynced while `ready` is false.
   */
  addHealthCheck(name: string, ready: () => boolean): this {
    this.checks.push({ name, ready });
    return this;
  }

  add(name: string, run: Runnable, opts: { leaderElected?: boolean } = {}): this {
    this.parts.push({ name, run, leaderElected: opts.leaderElected ?? this.opts.leaderElection !== undefined });
    return this;
  }

  /** Where the health server listens, once start() has opened it. */
  get healthAddress(): AddressInfo | undefined {
    const addr = this.server?.address();
    return addr !== null && typeof addr === 'object' ? addr : undefined;
  }

  get isLeader(): boolean {
    return this.elector?.isLeader() ?? false;
  }

  health(): HealthReport {
    const resources = this.resources.map((r) => r.health());
    const unsynced = [...resources.filter((r) => !r.synced).map((r) => r.name), ...this.checks.filter((c) => !c.ready()).map((c) => c.name)];
    return { ok: unsynced.length === 0 && !this.stopper.signal.aborted, unsynced, resources };
  }

  /**
   * Stops on SIGTERM and SIGINT of `source` (the process by default); returns the function that
   * removes the handlers.
   */
  handleSignals(source: Pick<NodeJS.EventEmitter, 'once' | 'off'> = process): () => void {
    const onSignal = (sig: NodeJS.Signals) => {
      this.log.info('signal received, shutting down', { signal: sig });
      this.stop();
    };
    source.once('SIGTERM', onSignal);
    source.once('SIGINT', onSignal);
    return () => {
      source.off('SIGTERM', onSignal);
      source.off('SIGINT', onSignal);
    };
  }

  stop(reason?: Error): void {
    if (reason && this.failure === undefined) this.failure = reason;
    this.stopper.abort();
  }

  /**
   * Runs everything until stop(); resolves after a clean shutdown, rejects with the first failure
   * (a part that failed, or leadership lost). A manager starts once.
   */
  async start(): Promise<void> {
    const stop = this.stopper.signal;
    const elected = this.parts.filter((p) => p.leaderElected);
    const le = this.opts.leaderElection;
    if (elected.length > 0 && le === undefined) throw new Error(`${this.opts.name}: parts ${elected.map((p) => p.name).join(', ')} need leaderElection options`);
    for (const r of this.resources) r.start();
    if (this.opts.health) await this.listen(this.opts.health.host ?? '127.0.0.1', this.opts.health.port);
    const runPart = (p: Part, signal: AbortSignal) =>
      p.run(signal).catch((err: Error) => {
        this.log.error('part failed, stopping', { part: p.name, error: err.message });
        this.stop(new Error(`${this.opts.name}: ${p.name} failed: ${err.message}`, { cause: err }));
      });
    const always = this.parts.filter((p) => !p.leaderElected).map((p) => runPart(p, stop));
    let leading: Promise<void> = Promise.resolve();
    if (elected.length > 0 && le !== undefined) {
      this.elector = new LeaderElector({
        ...le,
        logger: this.log,
        onStartedLeading: async (signal) => void (await Promise.all(elected.map((p) => runPart(p, signal)))),
        onStoppedLeading: () => {
          if (!stop.aborted) this.stop(new Error(`${this.opts.name}: leadership of ${le.namespace}/${le.name} lost`));
        },
      });
      leading = this.elector.run(stop);
    }
    await new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })));
    const deadlineMs = this.opts.shutdownTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
    // The elector releases the Lease only after its parts stopped.
    const finished = await Promise.race([Promise.all([...always, leading]).then(() => 'done' as const), late]);
    clearTimeout(timer);
    if (finished === 'late') this.log.warn('shutdown deadline passed with parts still running', { deadlineMs });
    await Promise.all(this.resources.map((r) => r.stop()));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.log.info('stopped', { manager: this.opts.name });
    if (this.failure) throw this.failure;
  }

  private async listen(host: string, port: number): Promise<void> {
    const server = http.createServer((req, res) => {
      void this.serve(req.url ?? '/', res).catch((err: Error) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(err.message);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.log.info('health and metrics server listening', { address: this.healthAddress });
  }

  private async serve(url: string, res: http.ServerResponse): Promise<void> {
    const path = url.split('?')[0];
    if (path === '/metrics') {
      const body = await this.opts.registry.metrics();
      res.writeHead(200, { 'Content-Type': this.opts.registry.contentType });
      res.end(body);
    } else if (path === '/healthz' || path === '/readyz') {
      const report = this.health();
      res.writeHead(report.ok ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(report));
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  }
}
