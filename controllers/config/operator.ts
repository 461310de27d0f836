// cilium-operator's options, with upstream's names and defaults.
import { ClusterPoolAllocator, DEFAULT_CLUSTER_POOL_IPV4_CIDR, DEFAULT_CLUSTER_POOL_IPV4_MASK_SIZE } from '../operator/ipam/cluster-pool.js';
import { checkClusterName, checkListenAddress, ConfigError, loadConfig, type ConfigOf, type OptionSpecs } from './options.js';

export const OPERATOR_OPTIONS = {
  'cluster-pool-ipv4-cidr': { kind: 'list', default: [DEFAULT_CLUSTER_POOL_IPV4_CIDR], description: 'CIDRs node podCIDRs are carved from' },
  'cluster-pool-ipv4-mask-size': { kind: 'int', default: DEFAULT_CLUSTER_POOL_IPV4_MASK_SIZE, min: 1, max: 30, description: 'prefix length of each node podCIDR' },
  'identity-gc-interval': { kind: 'duration', default: 15 * 60_000, description: 'how often unused identities are marked and collected' },
  'identity-heartbeat-timeout': { kind: 'duration', default: 30 * 60_000, description: 'how long a marked identity stays unused before deletion' },
  'identity-gc-rate-limit': { kind: 'int', default: 2500, min: 1, max: Number.MAX_SAFE_INTEGER, description: 'identities deleted per identity-gc-rate-interval at most' },
  'identity-gc-rate-interval': { kind: 'duration', default: 60_000, description: 'window of identity-gc-rate-limit' },
  'cilium-endpoint-gc-interval': { kind: 'duration', default: 5 * 60_000, description: 'how often CiliumEndpoints of gone pods are deleted' },
  'nodes-gc-interval': { kind: 'duration', default: 5 * 60_000, description: 'how often CiliumNodes of gone nodes are deleted' },
  'leader-election-lease-duration': { kind: 'duration', default: 15_000, description: 'lease duration of the operator leader lock' },
  'leader-election-renew-deadline': { kind: 'duration', default: 10_000, description: 'how long the leader retries renewing before giving up' },
  'leader-election-retry-period': { kind: 'duration', default: 2_000, description: 'interval between leader election attempts' },
  'operator-api-serve-addr': { kind: 'string', default: 'localhost:9234', check: checkListenAddress, description: 'listen address of /healthz' },
  'operator-prometheus-serve-addr': { kind: 'string', default: ':9963', check: checkListenAddress, description: 'metrics listen address; empty disables' },
  'cluster-name': { kind: 'string', default: 'default', check: checkClusterName, description: 'name of the cluster' },
  'k8s-kubeconfig-path': { kind: 'string', description: 'kubeconfig of the apiserver; in-cluster config when unset' },
} as const satisfies OptionSpecs;

export type OperatorConfig = ConfigOf<typeof OPERATOR_OPTIONS>;

/**
 * Loads and cross-checks the operator's options: the pool CIDRs and mask size as the allocator
 * takes them, leader election timings as client-go requires them.
 */
export function loadOperatorConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const c = loadConfig('cilium-operator', OPERATOR_OPTIONS, argv, env);
  try {
    new ClusterPoolAllocator(c['cluster-pool-ipv4-cidr'], c['cluster-pool-ipv4-mask-size']);
  } catch (err) {
    throw new ConfigError(`option --${(err as Error).message}`);
  }
  if (c['leader-election-lease-duration'] <= c['leader-election-renew-deadline']) {
    throw new ConfigError('option --leader-election-lease-duration: must be longer than --leader-election-renew-deadline');
  }
  if (c['leader-election-renew-deadline'] <= c['leader-election-retry-period']) {
    throw new ConfigError('option --leader-election-renew-deadline: must be longer than --leader-election-retry-period');
  }
  return c;
}
