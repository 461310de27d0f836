// The agent's REST API assembled: upstream's routes over the agent's parts, served on the unix
// socket. The daemon runs it as a Manager part.
import { newLogger, type Logger } from '../../runtime/log.js';
import type { AgentApiDeps } from './deps.js';
import { IpamExpirations } from './ipam-expiration.js';
import { MonitorHub, monitorRoutes } from './monitor.js';
import { daemonRoutes } from './routes-daemon.js';
import { endpointRoutes } from './routes-endpoint.js';
import { expireAllocation, ipamRoutes } from './routes-ipam.js';
import { policyRoutes } from './routes-policy.js';
import { Router } from './router.js';
import { ApiServer } from './server.js';

export interface AgentApiOptions {
  socketPath: string;
  deps: AgentApiDeps;
  /** The agent's version, in /healthz and /debuginfo. */
  version: string;
  /** Whether the endpoints of before a restart are back: creates and deletes wait for it. */
  restored: () => boolean;
  cniConfFile?: string;
  /** How long an allocation made with `expiration: true` waits for its endpoint; upstream's 10 min by default. */
  ipamExpirationMs?: number;
  logger?: Logger;
}

const RESTORE_POLL_MS = 20;

function until(check: () => boolean, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const tick = () => {
      if (check()) return resolve();
      if (signal.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      setTimeout(tick, RESTORE_POLL_MS);
    };
    tick();
  });
}

export class AgentApi {
  readonly router = new Router();
  readonly server: ApiServer;
  readonly expirations: IpamExpirations;
  readonly monitor: MonitorHub;

  constructor(opts: AgentApiOptions) {
    const log = opts.logger ?? newLogger('api');
    const { deps } = opts;
    this.expirations = new IpamExpirations(expireAllocation(deps, log), opts.ipamExpirationMs);
    this.monitor = new MonitorHub((signal) => deps.datapath.events(signal));
    daemonRoutes(this.router, { deps, version: opts.version, ...(opts.cniConfFile ? { cniConfFile: opts.cniConfFile } : {}) });
    endpointRoutes(this.router, { deps, expirations: this.expirations, restored: (signal) => until(opts.restored, signal), log });
    ipamRoutes(this.router, { deps, expirations: this.expirations, log });
    policyRoutes(this.router, deps);
    monitorRoutes(this.router, this.monitor);
    this.server = new ApiServer({ socketPath: opts.socketPath, router: this.router, logger: log });
  }

  /** Serves until `signal` aborts; pending IPAM expirations end with it (the next start's restore decides). */
  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.server.run(signal);
    } finally {
      this.expirations.stopAll();
    }
  }
}
