// The hubble CLI's connection to a Hubble server or relay: --server (default localhost:4245, as
// upstream; HUBBLE_SERVER in the environment), host:port or unix:///path, plaintext gRPC.
import { type Client, type ClientReadableStream, credentials } from '@grpc/grpc-js';
import { serverStream, unaryCall } from '../calls.js';
import { parseDuration } from '../../config/duration.js';
import { hubbleProtos } from '../protos.js';

export const DEFAULT_SERVER = 'localhost:4245';
const DEFAULT_DIAL_TIMEOUT = '5s';
const DEFAULT_REQUEST_TIMEOUT = '12s';

export interface ServerFlags {
  server?: string;
  timeout?: string;
  requestTimeout?: string;
}

/** A failure `hubble` reports as one line and exit code 1. */
export class HubbleCliError extends Error {}

function duration(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new HubbleCliError(`invalid argument ${JSON.stringify(text)} for "--${flag}" flag: ${(err as Error).message}`);
  }
}

/** A connected client pair: the Observer and the standard health service. */
export class HubbleConnection {
  readonly target: string;
  readonly observer: Client;
  readonly health: Client;
  private readonly dialMs: number;
  private readonly requestMs: number;

  constructor(flags: ServerFlags, env: NodeJS.ProcessEnv) {
    this.target = flags.server ?? env.HUBBLE_SERVER ?? DEFAULT_SERVER;
    this.dialMs = duration('timeout', flags.timeout ?? env.HUBBLE_TIMEOUT ?? DEFAULT_DIAL_TIMEOUT);
    this.requestMs = duration('request-timeout', flags.requestTimeout ?? env.HUBBLE_REQUEST_TIMEOUT ?? DEFAULT_REQUEST_TIMEOUT);
    if (this.target.startsWith('tls://')) throw new HubbleCliError(`--server ${this.target}: TLS is not supported by cilium-ts`);
    const { ObserverClient, HealthClient } = hubbleProtos();
    this.observer = new ObserverClient(this.target, credentials.createInsecure());
    this.health = new HealthClient(this.target, credentials.createInsecure(), { channelOverride: this.observer.getChannel() });
  }

  /** Resolves once connected; rejects naming the server after --timeout. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.observer.waitForReady(Date.now() + this.dialMs, (err) => (err ? reject(new HubbleCliError(`failed to connect to '${this.target}': ${err.message}`)) : resolve()));
    });
  }

  unary<T>(client: Client, method: string, req: object = {}): Promise<T> {
    return unaryCall<T>(client, method, req, this.requestMs);
  }

  getFlows<T>(req: object): ClientReadableStream<T> {
    return serverStream<T>(this.observer, 'GetFlows', req);
  }

  close(): void {
    this.health.close();
    this.observer.close();
  }
}
