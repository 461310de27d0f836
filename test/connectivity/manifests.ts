// The suite's policies, after upstream's cilium-cli/connectivity/builder/manifests (names kept),
// written for the suite's namespaces, ports and world.
import type { PolicyManifest } from './policies.js';
import type { World } from './cluster.js';
import { HTTP_PORT, HTTP_PORT_NAME } from './workloads.js';

const NS_LABEL = 'io.kubernetes.pod.namespace';

function cnp(namespace: string, name: string, spec: Record<string, unknown>): PolicyManifest {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec };
}

function ccnp(name: string, spec: Record<string, unknown>): PolicyManifest {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name }, spec };
}

const tcp = (port: string | number, endPort?: number) => [{ ports: [{ port: String(port), protocol: 'TCP', ...(endPort ? { endPort } : {}) }] }];

export const denyAllIngress = (ns: string) => cnp(ns, 'deny-all-ingress', { endpointSelector: {}, ingress: [{}] });
export const denyAllEgress = (ns: string) => cnp(ns, 'deny-all-egress', { endpointSelector: {}, egress: [{}] });
export const allowAllIngress = (ns: string) => cnp(ns, 'allow-all-ingress', { endpointSelector: {}, ingress: [{ fromEntities: ['all'] }] });
export const allowAllEgress = (ns: string) => cnp(ns, 'allow-all-egress', { endpointSelector: {}, egress: [{ toEntities: ['all'] }] });

export const clientEgressToEcho = (ns: string) =>
  cnp(ns, 'client-egress-to-echo', {
    endpointSelector: { matchLabels: { kind: 'client' } },
    egress: [{ toEndpoints: [{ matchLabels: { [NS_LABEL]: ns, kind: 'echo' } }], toPorts: tcp(HTTP_PORT) }],
  });

export const echoIngressFromClient = (ns: string) =>
  cnp(ns, 'echo-ingress-from-other-client', {
    endpointSelector: { matchLabels: { kind: 'echo' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { kind: 'client' } }], toPorts: tcp(HTTP_PORT) }],
  });

export const echoIngressFromOtherClientDeny = (ns: string) =>
  cnp(ns, 'echo-ingress-from-other-client-deny', {
    endpointSelector: { matchLabels: { kind: 'echo' } },
    ingressDeny: [{ fromEndpoints: [{ matchLabels: { other: 'client' } }] }],
  });

export const clientIngressFromClient2 = (ns: string) =>
  cnp(ns, 'client-ingress-from-client2', {
    endpointSelector: { matchLabels: { kind: 'client' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { other: 'client' } }] }],
  });

export const echoIngressNamedPort = (ns: string) =>
  cnp(ns, 'echo-ingress-named-port', {
    endpointSelector: { matchLabels: { kind: 'echo' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { kind: 'client' } }], toPorts: tcp(HTTP_PORT_NAME) }],
  });

export const clientIngressToEchoNamedPortDeny = (ns: string) =>
  cnp(ns, 'client-ingress-to-echo-named-port-deny', {
    endpointSelector: { matchLabels: { kind: 'echo' } },
    ingressDeny: [{ fromEndpoints: [{ matchLabels: { [NS_LABEL]: ns, name: 'client' } }], toPorts: tcp(HTTP_PORT_NAME) }],
  });

export const clientEgressToEchoPortRange = (ns: string) =>
  cnp(ns, 'client-egress-to-echo-port-range', {
    endpointSelector: { matchLabels: { kind: 'client' } },
    egress: [{ toEndpoints: [{ matchLabels: { [NS_LABEL]: ns, kind: 'echo' } }], toPorts: tcp(4096, 8191) }],
  });

export const clientEgressToEchoDenyPortRange = (ns: string) =>
  cnp(ns, 'client-egress-to-echo-deny-port-range', {
    endpointSelector: { matchLabels: { kind: 'client' } },
    egressDeny: [{ toEndpoints: [{ matchLabels: { [NS_LABEL]: ns, kind: 'echo' } }], toPorts: tcp(4096, 8191) }],
  });

export const clientEgressToEntities = (ns: string, entity: string, toPorts?: ReturnType<typeof tcp>) =>
  cnp(ns, `client-egress-to-entities-${entity}`, {
    endpointSelector: { matchLabels: { kind: 'client' } },
    egress: [{ toEntities: [entity], ...(toPorts ? { toPorts } : {}) }],
  });

export const clientEgressToEntitiesWorld = (ns: string, world: World) => clientEgressToEntities(ns, 'world', tcp(world.httpPort));

/** upstream client-egress-to-cidr-external: the world's /24 except the other address. */
export const clientEgressToCidrExternal = (ns: string, world: World) =>
  cnp(ns, 'client-egress-to-cidr', {
    endpointSelector: { matchLabels: { kind: 'client' } },
    egress: [{ toCIDRSet: [{ cidr: world.cidr, except: [`${world.otherIp}/32`] }] }],
  });

/** upstream allow-egress-specific-ns-ccnp: clients of the test namespace may talk to the other namespace only. */
export const allowEgressSpecificNsCcnp = (ns: string, otherNs: string) =>
  ccnp(`allow-egress-specific-namespace-${ns}`, {
    endpointSelector: { matchLabels: { [NS_LABEL]: ns, kind: 'client' } },
    egress: [{ toEndpoints: [{ matchLabels: { [NS_LABEL]: otherNs } }] }],
  });

/** A deny-only policy: it still puts the echo pods into ingress default deny (upstream Rule.Sanitize). */
export const echoIngressDenyClient2 = (ns: string, defaultDeny: boolean) =>
  cnp(ns, defaultDeny ? 'echo-ingress-deny-client2' : 'echo-ingress-deny-client2-no-default-deny', {
    endpointSelector: { matchLabels: { kind: 'echo' } },
    ...(defaultDeny ? {} : { enableDefaultDeny: { ingress: false } }),
    ingressDeny: [{ fromEndpoints: [{ matchLabels: { name: 'client2' } }] }],
  });

/** An allow rule that does not turn on default deny: what it does not name stays allowed. */
export const echoIngressFromClientNoDefaultDeny = (ns: string) =>
  cnp(ns, 'echo-ingress-from-client-no-default-deny', {
    endpointSelector: { matchLabels: { kind: 'echo' } },
    enableDefaultDeny: { ingress: false },
    ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client' } }] }],
  });

/** upstream client-egress-icmp: clients may only ping (ICMP echo request) the echo pods. */
export const clientEgressIcmp = (ns: string) =>
  cnp(ns, 'client-egress-icmp', {
    endpointSelector: { matchLabels: { kind: 'client' } },
    egress: [{ toEndpoints: [{ matchLabels: { kind: 'echo' } }], icmps: [{ fields: [{ type: 8, family: 'IPv4' }] }] }],
  });
