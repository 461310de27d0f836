// Hubble's peer.Peer service in the agent (upstream pkg/hubble/peer): Notify lists every node of
// the cluster from the CiliumNodes as PEER_ADDED, then follows them: a node that appears is
// PEER_ADDED, one whose address changes PEER_UPDATED, one that goes PEER_DELETED. Relays learn
// the nodes from it. TLS is not served, so notifications carry none.
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { listenAddress as parseListenAddress } from '../../runtime/metrics-server.js';
import type { Resource } from '../../runtime/resource.js';

export type PeerChangeType = 'PEER_ADDED' | 'PEER_DELETED' | 'PEER_UPDATED';

/** peer.ChangeNotification in the protos.ts convention. */
export interface ChangeNotification {
  name: string;
  address: string;
  type: PeerChangeType;
  tls: null;
}

/** Where Notify learns the nodes: the current ones are replayed as added to every subscriber. */
export interface PeerSource {
  subscribe(notify: (change: ChangeNotification) => void): () => void;
}

/** Upstream's Hubble server port (pkg/hubble/defaults ServerPort), which peers are told when TCP is off. */
export const HUBBLE_SERVER_PORT = 4244;

/** The port of hubble-listen-address as peers reach it. */
export function peerPort(listenAddress: string): number {
  return listenAddress === '' ? HUBBLE_SERVER_PORT : parseListenAddress(listenAddress).port;
}

// Upstream's cluster name when none is configured: node names then carry no cluster prefix.
const DEFAULT_CLUSTER = 'default';

interface Peer {
  name: string;
  address: string;
}

/** Upstream Node.GetNodeIP(false): the first IPv4 InternalIP, else the first IPv4 ExternalIP. */
function nodeIPv4(node: CiliumNode): string | undefined {
  const addresses = node.spec.addresses ?? [];
  for (const type of ['InternalIP', 'ExternalIP'] as const) {
    const ip = addresses.find((a) => a.type === type && a.ip !== undefined && a.ip.includes('.'))?.ip;
    if (ip !== undefined) return ip;
  }
  return undefined;
}

function peerOf(node: CiliumNode, clusterName: string, port: number): Peer {
  const name = node.metadata.name ?? '';
  const ip = nodeIPv4(node);
  return {
    // Upstream Node.Fullname(): the cluster name leads only when it is not the default.
    name: clusterName === DEFAULT_CLUSTER || clusterName === '' ? name : `${clusterName}/${name}`,
    address: ip === undefined ? '' : `${ip}:${port}`,
  };
}

/** The nodes of the CiliumNode watch as peers whose Hubble server listens on `port`. */
export function ciliumNodePeers(nodes: Pick<Resource<CiliumNode>, 'on'>, clusterName: string, port: number): PeerSource {
  return {
    subscribe(notify) {
      const send = (p: Peer, type: PeerChangeType) => notify({ name: p.name, address: p.address, type, tls: null });
      return nodes.on({
        add: (n) => send(peerOf(n, clusterName, port), 'PEER_ADDED'),
        update: (o, n) => {
          const before = peerOf(o, clusterName, port);
          const after = peerOf(n, clusterName, port);
          if (before.name !== after.name) {
            send(before, 'PEER_DELETED');
            send(after, 'PEER_ADDED');
          } else if (before.address !== after.address) send(after, 'PEER_UPDATED');
        },
        delete: (n) => send(peerOf(n, clusterName, port), 'PEER_DELETED'),
      });
    },
  };
}

/** Only this node: what a server without the cluster's nodes knows. */
export function selfPeer(name: string, address: string): PeerSource {
  return {
    subscribe(notify) {
      notify({ name, address, type: 'PEER_ADDED', tls: null });
      return () => undefined;
    },
  };
}

/** Serves one Notify call until the client goes; the stream never ends on its own, as upstream's. */
export function serveNotify(call: ServerWritableStream<unknown, ChangeNotification>, source: PeerSource): void {
  const unsubscribe = source.subscribe((change) => {
    if (!call.cancelled) call.write(change);
  });
  call.on('cancelled', () => {
    unsubscribe();
    call.end();
  });
}
