// Hubble's options of cilium-agent, with upstream's names and defaults (pkg/hubble/cell); the
// agent's option table takes them in.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { checkListenAddress, type ConfigOf, type OptionSpecs } from '../../config/options.js';
import { checkMetricsOption } from './metrics-options.js';

/** Upstream: 1024 events per CPU, at most 16384, when hubble-event-queue-size is 0. */
const QUEUE_PER_CPU = 1024;
const QUEUE_MAX = 16384;
const MAX_CAPACITY = 65535;
const MIB = 1024 * 1024;

/** One less than a power of two, as upstream's ring requires. */
function checkCapacity(v: string): string | undefined {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n < 1 || n > MAX_CAPACITY || ((n + 1) & n) !== 0) return `${JSON.stringify(v)} must be one less than a power of two, 1..${MAX_CAPACITY} (1, 3, 7, ..., 4095, ..., 65535)`;
  return undefined;
}

export const HUBBLE_OPTIONS = {
  'enable-hubble': { kind: 'string', default: 'false', choices: ['true', 'false'], description: 'run the Hubble flow server' },
  // Upstream's /var/run/cilium/hubble.sock is its state-dir's hubble.sock: agents with their own state dirs get their own sockets.
  'hubble-socket-path': { kind: 'string', description: 'unix socket the Hubble server listens on (default <state-dir>/hubble.sock)' },
  'hubble-listen-address': { kind: 'string', default: ':4244', check: checkListenAddress, description: 'TCP address the Hubble server listens on; empty disables' },
  'hubble-event-buffer-capacity': { kind: 'string', default: '4095', check: checkCapacity, description: 'flows the Hubble ring holds; one less than a power of two' },
  'hubble-event-queue-size': { kind: 'int', default: 0, min: 0, max: 1 << 24, description: 'datapath events that may wait to be decoded before the oldest are lost; 0: 1024 per CPU, at most 16384' },
  'hubble-metrics-server': { kind: 'string', default: ':9965', check: checkListenAddress, description: 'address the hubble_* Prometheus metrics are served on; empty disables' },
  // Upstream's syntax: metrics separated by spaces or commas, each `name[:option=value;option=value]`.
  'hubble-metrics': { kind: 'string', default: '', check: checkMetricsOption, description: 'Hubble metrics to produce, e.g. "drop:sourceContext=pod;destinationContext=pod tcp flow port-distribution icmp policy"' },
  // Flow history beyond the ring (none of upstream's options): a bounded on-disk log per agent.
  'enable-hubble-history': { kind: 'string', default: 'true', choices: ['true', 'false'], description: 'keep every flow in a bounded on-disk log GetFlows since/until reads past the ring' },
  'hubble-history-dir': { kind: 'string', description: 'directory of the flow history (default <state-dir>/hubble-history)' },
  'hubble-history-max-size-mb': { kind: 'int', default: 1024, min: 1, max: 1 << 30, description: 'MiB the flow history may take on disk; the oldest segments go first' },
  'hubble-history-max-age': { kind: 'duration', default: 0, allowZero: true, description: 'flows older than this leave the history; 0 keeps them until the size limit' },
} as const satisfies OptionSpecs;

export type HubbleConfig = ConfigOf<typeof HUBBLE_OPTIONS>;

/** The settings the observer runs with. */
export interface HubbleSettings {
  enabled: boolean;
  socketPath: string;
  /** host:port; '' disables TCP. */
  listenAddress: string;
  capacity: number;
  queueSize: number;
  /** host:port of the metrics endpoint; '' disables. */
  metricsServer: string;
  /** The hubble-metrics value. */
  metrics: string;
  /** Where the flow history lives; undefined when it is disabled. */
  history?: { dir: string; maxBytes: number; maxAgeMs: number };
}

/** The settings of the loaded options; `state-dir` is the agent's (upstream's default /var/run/cilium). */
export function hubbleSettings(config: HubbleConfig & { 'state-dir': string }, cpus = availableParallelism()): HubbleSettings {
  const queue = config['hubble-event-queue-size'];
  return {
    enabled: config['enable-hubble'] === 'true',
    socketPath: config['hubble-socket-path'] ?? path.join(config['state-dir'], 'hubble.sock'),
    listenAddress: config['hubble-listen-address'],
    capacity: Number(config['hubble-event-buffer-capacity']),
    queueSize: queue > 0 ? queue : Math.min(cpus * QUEUE_PER_CPU, QUEUE_MAX),
    metricsServer: config['hubble-metrics-server'],
    metrics: config['hubble-metrics'],
    ...(config['enable-hubble-history'] === 'true'
      ? {
          history: {
            dir: config['hubble-history-dir'] ?? path.join(config['state-dir'], 'hubble-history'),
            maxBytes: config['hubble-history-max-size-mb'] * MIB,
            maxAgeMs: config['hubble-history-max-age'],
          },
        }
      : {}),
  };
}
