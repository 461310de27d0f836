// hubble-relay's options with upstream's names and defaults (hubble-relay serve,
// pkg/hubble/relay/defaults), and the few tunables upstream does not expose, all read here.
import { checkListenAddress, type ConfigOf, type OptionSpecs } from '../../config/options.js';

export const RELAY_OPTIONS = {
  'listen-address': { kind: 'string', default: ':4245', check: checkListenAddress, description: 'address on which to listen (host:port)' },
  'peer-service': {
    kind: 'string',
    default: 'unix:///var/run/cilium/hubble.sock',
    description: 'address of the server that implements the peer gRPC service (host:port or unix:///path)',
  },
  'dial-timeout': { kind: 'duration', default: 5_000, description: 'how long a connection to a peer or the peer service may take to be established' },
  'retry-timeout': { kind: 'duration', default: 30_000, description: 'time to wait before attempting to reconnect to a hubble peer or the peer service' },
  'sort-buffer-len-max': { kind: 'int', default: 100, min: 1, max: 1 << 20, description: 'max number of flows that can be buffered for sorting before being sent to the client (per request)' },
  'sort-buffer-drain-timeout': { kind: 'duration', default: 1_000, description: 'when the per-request flows sort buffer is not full, how long flows wait in it to be merged in time order' },
} as const satisfies OptionSpecs;

export type RelayConfig = ConfigOf<typeof RELAY_OPTIONS>;

/** What the relay runs with. */
export interface RelaySettings {
  listenAddress: string;
  peerService: string;
  dialTimeoutMs: number;
  retryTimeoutMs: number;
  sortBufferLenMax: number;
  sortBufferDrainTimeoutMs: number;
  /** How often a follow request looks for peers it does not read yet (upstream peerUpdateInterval). */
  peerUpdateIntervalMs: number;
  /** NODE_ERRORs with the same message within this window become one event naming all their nodes (upstream ErrorAggregationWindow). */
  errorAggregationWindowMs: number;
  /** At most this many unavailable nodes are named by ServerStatus (upstream numUnavailableNodesReportMax). */
  unavailableNodesReportMax: number;
  version: string;
}

const PEER_UPDATE_INTERVAL_MS = 2_000;
const UNAVAILABLE_NODES_REPORT_MAX = 10;
const ERROR_AGGREGATION_WINDOW_MS = 10_000;

export function relaySettings(config: RelayConfig, version: string): RelaySettings {
  return {
    listenAddress: config['listen-address'],
    peerService: config['peer-service'],
    dialTimeoutMs: config['dial-timeout'],
    retryTimeoutMs: config['retry-timeout'],
    sortBufferLenMax: config['sort-buffer-len-max'],
    sortBufferDrainTimeoutMs: config['sort-buffer-drain-timeout'],
    peerUpdateIntervalMs: PEER_UPDATE_INTERVAL_MS,
    errorAggregationWindowMs: ERROR_AGGREGATION_WINDOW_MS,
    unavailableNodesReportMax: UNAVAILABLE_NODES_REPORT_MAX,
    version,
  };
}
