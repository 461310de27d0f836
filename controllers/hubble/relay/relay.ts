// hubble-relay: the peer pool and the gRPC server, run together until stopped.
import type { Logger } from '../../runtime/log.js';
import type { RelaySettings } from './options.js';
import { PeerManager } from './peers.js';
import { RelayServer } from './server.js';

export class HubbleRelay {
  readonly peers: PeerManager;
  readonly server: RelayServer;

  constructor(
    readonly settings: RelaySettings,
    private readonly log: Logger,
  ) {
    this.peers = new PeerManager({ peerService: settings.peerService, dialTimeoutMs: settings.dialTimeoutMs, retryTimeoutMs: settings.retryTimeoutMs, log });
    this.server = new RelayServer(settings, this.peers, log);
  }

  /** Serves until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.server.start();
    this.log.info('hubble-relay started', { peerService: this.settings.peerService });
    try {
      await this.peers.run(signal);
    } finally {
      this.server.stop();
    }
  }
}
