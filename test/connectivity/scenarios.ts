// Upstream's scenarios (cilium-cli/connectivity/tests) as lists of actions over the suite's pods:
// PodToPod, ClientToClient, PodToHost, PodToRemoteNode, PodToWorld and PodToCIDR.
import type { Action, Destination } from './actions.js';
import type { ClusterNode, ConnectivityCluster, World } from './cluster.js';
import { HTTP_PORT, type Peer, type Workloads } from './workloads.js';

/** Reserved identities (upstream pkg/identity/numericidentity.go). */
export const ID_HOST = 1;
export const ID_WORLD = 2;
export const ID_REMOTE_NODE = 6;

export interface Suite {
  cluster: ConnectivityCluster;
  workloads: Workloads;
}

export function peers(s: Suite, filter: (p: Peer) => boolean): Peer[] {
  return s.workloads.peers.filter(filter);
}

export const isClient = (p: Peer): boolean => p.labels.kind === 'client';
export const isEcho = (p: Peer): boolean => p.labels.kind === 'echo';

export function inTestNs(s: Suite): (p: Peer) => boolean {
  return (p) => p.namespace === s.workloads.namespace;
}

export function podDestination(p: Peer): Destination {
  return { name: `${p.namespace}/${p.name}`, ip: p.ip, node: p.node, identity: p.identity, peer: p };
}

/** A node's InternalIP: `host` to its own pods, `remote-node` to every other node's. */
export function nodeDestination(node: ClusterNode, viewer: Peer): Destination {
  const own = node.name === viewer.node;
  return { name: `${own ? 'host' : 'remote-node'} ${node.name}`, ip: node.ip, node: node.name, identity: own ? ID_HOST : ID_REMOTE_NODE };
}

/** Every client to every echo of the test namespace (or of `echoes`), over HTTP on `port`. */
export function podToPod(s: Suite, opts: { sources?: Peer[]; echoes?: Peer[]; port?: number } = {}): Action[] {
  const sources = opts.sources ?? peers(s, (p) => isClient(p) && inTestNs(s)(p));
  const echoes = opts.echoes ?? peers(s, (p) => isEcho(p) && inTestNs(s)(p));
  const port = opts.port ?? HTTP_PORT;
  return sources.flatMap((from) => echoes.map((to) => ({ from, to: podDestination(to), probe: { kind: 'http' as const, ip: to.ip, port } })));
}

/** Ping between every two clients. */
export function clientToClient(s: Suite): Action[] {
  const clients = peers(s, isClient);
  return clients.flatMap((from) => clients.filter((to) => to !== from).map((to) => ({ from, to: podDestination(to), probe: { kind: 'ping' as const, ip: to.ip } })));
}

/** Ping from every client to its own node. */
export function podToHost(s: Suite): Action[] {
  return peers(s, isClient).map((from) => {
    const node = s.cluster.nodes.find((n) => n.name === from.node) as ClusterNode;
    return { from, to: nodeDestination(node, from), probe: { kind: 'ping' as const, ip: node.ip } };
  });
}

/** Ping from every client to every other node. */
export function podToRemoteNode(s: Suite): Action[] {
  return peers(s, isClient).flatMap((from) =>
    s.cluster.nodes.filter((n) => n.name !== from.node).map((node) => ({ from, to: nodeDestination(node, from), probe: { kind: 'ping' as const, ip: node.ip } })),
  );
}

function worldDestination(name: string, ip: string, identity: number | 'cidr'): Destination {
  return { name, ip, identity };
}

/** HTTP from every client to the world server. */
export function podToWorld(s: Suite): Action[] {
  const w = s.cluster.world;
  return peers(s, isClient).map((from) => ({ from, to: worldDestination('world', w.ip, ID_WORLD), probe: { kind: 'http' as const, ip: w.ip, port: w.httpPort } }));
}

/**
 * Upstream's PodToCIDR against the world's two addresses: HTTP to the server and ping to the
 * other address. With a CIDR policy in force the node knows both by CIDR identities.
 */
export function podToCIDR(s: Suite): Action[] {
  const w: World = s.cluster.world;
  return peers(s, isClient).flatMap((from) => [
    { from, to: worldDestination('world', w.ip, 'cidr'), probe: { kind: 'http' as const, ip: w.ip, port: w.httpPort } },
    { from, to: worldDestination('world-other', w.otherIp, 'cidr'), probe: { kind: 'ping' as const, ip: w.otherIp } },
  ]);
}

/** Ping from every client to every echo of the test namespace. */
export function podToPodPing(s: Suite): Action[] {
  const echoes = peers(s, (p) => isEcho(p) && inTestNs(s)(p));
  return peers(s, isClient).flatMap((from) => echoes.map((to) => ({ from, to: podDestination(to), probe: { kind: 'ping' as const, ip: to.ip } })));
}
