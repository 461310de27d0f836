// Fixtures for the observer's unit tests: sources of one node with one local endpoint, events, settings.
import type { DatapathEvent, DropEvent, PacketSummary } from '../../../datapath/types.js';
import type { Policy } from '../../hubble/flow-types.js';
import type { LocalEndpointInfo, ObserverSources } from './enrich.js';
import type { HubbleSettings } from './options.js';

export const SERVER_IP = '10.0.0.2';
export const CLIENT_IP = '10.0.1.5';
export const DENY_POLICY: Policy = { kind: 'CiliumNetworkPolicy', namespace: 'shop', name: 'deny-icmp', labels: ['k8s:io.cilium.k8s.policy.name=deny-icmp'], revision: '7' };

export const SERVER: LocalEndpointInfo = {
  id: 12,
  ipv4: SERVER_IP,
  identity: 4242,
  labels: ['k8s:io.kubernetes.pod.namespace=shop', 'k8s:app=cart', 'k8s:io.cilium.k8s.policy.cluster=prod'],
  namespace: 'shop',
  podName: 'cart-5c4b9-xk2p',
  ifindex: 33,
  ifname: 'lxc0123',
  pod: {
    generateName: 'cart-5c4b9-',
    labels: { app: 'cart', 'pod-template-hash': '5c4b9' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'cart-5c4b9', uid: 'rs', controller: true }],
  },
};

export function testSources(over: Partial<ObserverSources> = {}): ObserverSources {
  return {
    nodeName: 'node-a',
    clusterName: 'prod',
    localEndpointByIp: (ip) => (ip === SERVER_IP ? SERVER : undefined),
    localEndpointById: (id) => (id === SERVER.id ? SERVER : undefined),
    identityLabels: (id) => ({ 5000: ['k8s:app=client', 'k8s:io.cilium.k8s.policy.cluster=prod'], 2: ['reserved:world'] })[id],
    remoteEndpoint: (ip) => (ip === CLIENT_IP ? { namespace: 'shop', podName: 'client-1', identity: 5000 } : undefined),
    policyOfCookie: (cookie) => (cookie === 77 ? DENY_POLICY : undefined),
    ...over,
  };
}

export function tcpPacket(flags: number, dstPort = 8080): PacketSummary {
  return { srcIp: CLIENT_IP, dstIp: SERVER_IP, protocol: 6, srcPort: 40000, dstPort, flags };
}

export function policyDrop(dstPort = 8080): DropEvent {
  return { type: 'drop', endpointId: SERVER.id, srcIdentity: 5000, dstIdentity: 4242, reason: 133, direction: 'ingress', cookie: 0, packet: tcpPacket(0x02, dstPort) };
}

export function traceNew(dstPort = 8080): DatapathEvent {
  return { type: 'trace', endpointId: SERVER.id, srcIdentity: 5000, dstIdentity: 4242, observationPoint: 0, ctState: 1, packet: tcpPacket(0x02, dstPort) };
}

/** Observer settings for unit tests: no TCP, no metrics, no history unless given. */
export function testSettings(over: Partial<HubbleSettings> = {}): HubbleSettings {
  return { enabled: true, socketPath: '/nonexistent/hubble.sock', listenAddress: '', capacity: 63, queueSize: 16, metricsServer: '', metrics: '', ...over };
}

/** Events of a busy node: drops to 8000..8006 on every third, traces to 8080 otherwise, ephemeral source ports. */
export function mixedEvent(i: number): DatapathEvent {
  const ev = i % 3 === 0 ? policyDrop(8000 + (i % 7)) : traceNew(8080);
  return { ...ev, packet: { ...ev.packet, srcPort: 32768 + ((i * 7919) % 28000) } };
}

/** An event source with no events that ends when `signal` aborts: the observer only serves. */
export function idleEvents(signal: AbortSignal): AsyncIterable<DatapathEvent> {
  const done = new Promise<IteratorResult<DatapathEvent>>((resolve) => {
    if (signal.aborted) resolve({ done: true, value: undefined });
    signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true });
  });
  return { [Symbol.asyncIterator]: () => ({ next: () => done }) };
}
