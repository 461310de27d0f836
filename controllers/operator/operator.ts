// cilium-operator assembled: the shared watches, one part per duty, all leader-elected on one
// Lease (upstream kube-system/cilium-operator-resource-lock), /healthz on operator-api-serve-addr
// and metrics on operator-prometheus-serve-addr. The entry point (cmd/cilium-operator.ts) and the
// tests build it here, so what the tests run is what ships.
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import type { OperatorConfig } from '../config/operator.js';
import type { ApiClient } from '../runtime/apiclient.js';
import { Controller } from '../runtime/controller.js';
import { EventRecorder } from '../runtime/events.js';
import { operatorLeaderElection } from '../runtime/leaderelection.js';
import type { Logger } from '../runtime/log.js';
import { Manager } from '../runtime/manager.js';
import { listenAddress, MetricsServer } from '../runtime/metrics-server.js';
import { EndpointGC } from './endpointgc/gc.js';
import { IdentityGC } from './identitygc/gc.js';
import { ClusterPoolAllocator } from './ipam/cluster-pool.js';
import { IpamReconciler } from './ipam/controller.js';
import { NodeGC } from './nodegc/gc.js';
import { PolicyStatusReconciler } from './policystatus/controller.js';
import { operatorResources, type OperatorResources } from './resources.js';

export const COMPONENT = 'cilium-operator';

export interface OperatorOptions {
  config: OperatorConfig;
  client: ApiClient;
  logger: Logger;
  /** Leader election candidate; default hostname plus a random suffix, as upstream. */
  identity?: string;
  /** Namespace of the Lease; default kube-system. */
  leaseNamespace?: string;
  /** Watch namespaced collections only here (tests); all namespaces by default. */
  namespace?: string;
  /** Debounce of policy status after node reports; default 1 s. */
  policyStatusDebounceMs?: number;
  /** The CiliumNode GC; on by default (see nodegc/gc.ts for clusters without Node objects). */
  nodeGC?: boolean;
}

export interface Operator {
  manager: Manager;
  resources: OperatorResources;
  registry: Registry;
  identity: string;
  /** Where metrics are served once started (undefined when disabled or not yet listening). */
  metricsAddress(): AddressInfo | undefined;
}

/** "host:port" → listen arguments; an empty host means every interface (Go's ":9963"). */
export function buildOperator(opts: OperatorOptions): Operator {
  const { config, client, logger } = opts;
  const registry = new Registry();
  const identity = opts.identity ?? `${hostname()}-${randomBytes(5).toString('hex')}`;
  const recorder = new EventRecorder({ client, component: COMPONENT, logger });
  const resources = operatorResources({ client, recorder, logger, namespace: opts.namespace });
  const health = listenAddress(config['operator-api-serve-addr']);
  const manager = new Manager({
    name: COMPONENT,
    registry,
    logger,
    health: { host: health.host ?? '0.0.0.0', port: health.port },
    leaderElection: {
      client,
      namespace: opts.leaseNamespace ?? operatorLeaderElection.namespace,
      name: operatorLeaderElection.name,
      identity,
      leaseDurationMs: config['leader-election-lease-duration'],
      renewDeadlineMs: config['leader-election-renew-deadline'],
      retryPeriodMs: config['leader-election-retry-period'],
    },
  });
  const { ciliumNodes, ciliumIdentities, ciliumEndpoints, ciliumNetworkPolicies, ciliumClusterwideNetworkPolicies, pods, nodes } = resources;
  manager.addResource(ciliumNodes).addResource(ciliumIdentities).addResource(ciliumEndpoints).addResource(ciliumNetworkPolicies);
  manager.addResource(ciliumClusterwideNetworkPolicies).addResource(pods).addResource(nodes);

  const ipam = new Controller({
    name: 'ipam',
    registry,
    logger,
    reconciler: new IpamReconciler({
      client,
      nodes: resources.ciliumNodes,
      allocator: new ClusterPoolAllocator(config['cluster-pool-ipv4-cidr'], config['cluster-pool-ipv4-mask-size']),
      logger,
    }),
  }).watch(resources.ciliumNodes);
  manager.addController(ipam);

  const policyStatus = new PolicyStatusReconciler({ client, resources, clusterName: config['cluster-name'], debounceMs: opts.policyStatusDebounceMs });
  manager.addController(policyStatus.bind(new Controller({ name: 'policystatus', registry, logger, reconciler: policyStatus, workers: 2 })));

  const identityGC = new IdentityGC({
    client,
    identities: resources.ciliumIdentities,
    endpoints: resources.ciliumEndpoints,
    intervalMs: config['identity-gc-interval'],
    heartbeatTimeoutMs: config['identity-heartbeat-timeout'],
    rateLimit: config['identity-gc-rate-limit'],
    rateIntervalMs: config['identity-gc-rate-interval'],
    registry,
    logger,
  });
  manager.add('identitygc', (signal) => identityGC.run(signal));
  const endpointGC = new EndpointGC({ client, endpoints: resources.ciliumEndpoints, pods: resources.pods, intervalMs: config['cilium-endpoint-gc-interval'], registry, logger });
  manager.add('endpointgc', (signal) => endpointGC.run(signal));
  if (opts.nodeGC ?? true) {
    const nodeGC = new NodeGC({ client, ciliumNodes: resources.ciliumNodes, nodes: resources.nodes, intervalMs: config['nodes-gc-interval'], logger });
    manager.add('nodegc', (signal) => nodeGC.run(signal));
  }

  const metricsAddr = config['operator-prometheus-serve-addr'];
  const metrics = metricsAddr === '' ? undefined : new MetricsServer(registry, metricsAddr, logger);
  if (metrics !== undefined) manager.add('metrics-server', (signal) => metrics.run(signal), { leaderElected: false });
  return {
    manager,
    resources,
    registry,
    identity,
    metricsAddress: () => metrics?.address(),
  };
}

