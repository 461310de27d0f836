// What the ipcache should hold, computed from what the cluster and the node say: this node's
// addresses (its devices' and its CiliumNode's) as host, the other CiliumNodes' as remote-node,
// every node's health address, every CiliumEndpoint's address with its identity and, for pods
// behind another node, that node's address as tunnel endpoint (upstream pkg/node/manager and the
// CEP watcher feeding pkg/ipcache). Pure, so the loop can recompute it from scratch on every change
// and compare. The `cidr` source is not here: the policy loop alone writes it, ordered around its
// endpoint regenerations.
import { isIPv4 } from 'node:net';
import type { CiliumEndpoint, CiliumNode } from '../../../crds/gen/index.js';
import { IPCACHE_SOURCE_PRECEDENCE, type IPCacheEntry, type IPCacheSource } from '../../../datapath/types.js';
import type { KubeObject } from '../../runtime/kinds.js';
import { RESERVED_IDENTITIES } from '../identity/reserved.js';

export const IDENTITY_HOST = RESERVED_IDENTITIES.host;
export const IDENTITY_HEALTH = RESERVED_IDENTITIES.health;
export const IDENTITY_REMOTE_NODE = RESERVED_IDENTITIES['remote-node'];

/** Upstream remote_endpoint_info flag: the row carries a tunnel endpoint. */
export const FLAG_HAS_TUNNEL = 2;

const MAX_IDENTITY = 2 ** 32 - 1;

// Node address types that hold an IP (Hostname and the DNS types do not).
const IP_ADDRESS_TYPES = ['InternalIP', 'ExternalIP', 'CiliumInternalIP'] as const;

/** An endpoint of this node as the endpoint manager knows it, fresher than its CiliumEndpoint. */
export interface LocalEndpointAddress {
  ipv4: string;
  identity: number;
}

export interface IPCacheInputs {
  /** This node's name (CiliumNode name). */
  nodeName: string;
  nodes: readonly CiliumNode[];
  endpoints: readonly CiliumEndpoint[];
  localEndpoints?: readonly LocalEndpointAddress[];
  /** Every address of this node's devices (cilium_host's router IP among them): host, as upstream. */
  localAddresses?: readonly string[];
}

/** A field of an object that could not become a row; the object's other rows still count. */
export interface IPCacheProblem {
  object: KubeObject;
  path: string;
  message: string;
}

/** The sources computed here, in precedence order; `cidr` has one writer, the policy loop. */
export type ComputedSource = Exclude<IPCacheSource, 'cidr'>;
export const COMPUTED_SOURCES: readonly ComputedSource[] = IPCACHE_SOURCE_PRECEDENCE.filter((s): s is ComputedSource => s !== 'cidr');

export interface IPCacheRows {
  rows: Record<ComputedSource, IPCacheEntry[]>;
  problems: IPCacheProblem[];
}

/** The address other nodes reach `node` at (upstream GetNodeIP: InternalIP, else ExternalIP). */
export function nodeIP(node: CiliumNode): string | undefined {
  const addresses = node.spec.addresses ?? [];
  for (const type of ['InternalIP', 'ExternalIP']) {
    const ip = addresses.find((a) => a.type === type && a.ip !== undefined && isIPv4(a.ip))?.ip;
    if (ip !== undefined) return ip;
  }
  return undefined;
}

function withTunnel(prefix: string, identity: number, tunnel: string | undefined): IPCacheEntry {
  return tunnel === undefined ? { prefix, identity } : { prefix, identity, tunnelEndpoint: tunnel, flags: FLAG_HAS_TUNNEL };
}

/** Keeps the first row of each prefix: callers add rows in their order of preference. */
class Rows {
  private readonly byPrefix = new Map<string, IPCacheEntry>();
  add(row: IPCacheEntry): void {
    if (!this.byPrefix.has(row.prefix)) this.byPrefix.set(row.prefix, row);
  }
  sorted(): IPCacheEntry[] {
    return [...this.byPrefix.values()].sort((a, b) => a.prefix.localeCompare(b.prefix));
  }
}

function nodeRows(node: CiliumNode, own: boolean, rows: Rows, problems: IPCacheProblem[]): void {
  const tunnel = own ? undefined : nodeIP(node);
  const hostIdentity = own ? IDENTITY_HOST : IDENTITY_REMOTE_NODE;
  // Preference within one node: the order of IP_ADDRESS_TYPES, then the listed order.
  for (const type of IP_ADDRESS_TYPES) {
    (node.spec.addresses ?? []).forEach((a, i) => {
      if (a.type !== type || a.ip === undefined) return;
      if (!isIPv4(a.ip)) {
        // IPv6 addresses are valid but not ours to write (IPv4-only datapath).
        if (!a.ip.includes(':')) problems.push({ object: node, path: `spec.addresses[${i}].ip`, message: `${JSON.stringify(a.ip)} is not an IPv4 address` });
        return;
      }
      // Upstream tunnels only to a node's CiliumInternalIP (its router), the rest is routed natively.
      rows.add(withTunnel(`${a.ip}/32`, hostIdentity, type === 'CiliumInternalIP' ? tunnel : undefined));
    });
  }
  const health = node.spec.health?.ipv4;
  if (health !== undefined) {
    if (isIPv4(health)) rows.add(withTunnel(`${health}/32`, IDENTITY_HEALTH, tunnel));
    else problems.push({ object: node, path: 'spec.health.ipv4', message: `${JSON.stringify(health)} is not an IPv4 address` });
  }
}

function creationTime(obj: KubeObject): number {
  const t = obj.metadata?.creationTimestamp;
  return t === undefined ? 0 : new Date(t).getTime();
}

function objectName(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/**
 * The rows per source: `local` this node's addresses (its CiliumNode's and its devices': host) and
 * health address, `node` the other nodes' (remote-node, health), `endpoint` pods of every node.
 * World needs no row: the datapath resolves what no row covers to world (2).
 */
export function computeIPCache(inputs: IPCacheInputs): IPCacheRows {
  const problems: IPCacheProblem[] = [];
  const local = new Rows();
  const remote = new Rows();
  const nodes = [...inputs.nodes].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  const ownNode = nodes.find((n) => n.metadata.name === inputs.nodeName);
  if (ownNode !== undefined) nodeRows(ownNode, true, local, problems);
  for (const ip of inputs.localAddresses ?? []) if (isIPv4(ip)) local.add({ prefix: `${ip}/32`, identity: IDENTITY_HOST });
  for (const n of nodes) if (n !== ownNode) nodeRows(n, false, remote, problems);

  const ownIP = ownNode === undefined ? undefined : nodeIP(ownNode);
  const nodeIPByName = new Map(nodes.flatMap((n) => (n.metadata.name === undefined ? [] : [[n.metadata.name, nodeIP(n)] as const])));
  const endpoints = new Rows();
  for (const ep of inputs.localEndpoints ?? []) {
    // An endpoint still waiting for its identity (0) has no row yet; the datapath refuses 0.
    if (ep.identity !== 0) endpoints.add({ prefix: `${ep.ipv4}/32`, identity: ep.identity });
  }

  // Two CiliumEndpoints may claim one address while a pod moves or a stale one waits for garbage
  // collection: this node's wins (it knows its own pods), then the newest, then the name.
  const isLocal = (cep: CiliumEndpoint) => {
    const node = cep.status?.networking?.node;
    return node === inputs.nodeName || (node !== undefined && node === ownIP);
  };
  const ceps = [...inputs.endpoints].sort(
    (a, b) => Number(isLocal(b)) - Number(isLocal(a)) || creationTime(b) - creationTime(a) || objectName(a).localeCompare(objectName(b)),
  );
  for (const cep of ceps) {
    const status = cep.status;
    const identity = status?.identity?.id;
    // Endpoints still being created have no address or no identity yet: nothing to write.
    if (identity === undefined || status?.networking === undefined) continue;
    if (!Number.isInteger(identity) || identity < 1 || identity > MAX_IDENTITY) {
      problems.push({ object: cep, path: 'status.identity.id', message: `${identity} is not an identity in 1..${MAX_IDENTITY}` });
      continue;
    }
    const node = status.networking.node;
    let tunnel: string | undefined;
    if (!isLocal(cep) && node !== undefined) {
      // Ours name the node; upstream's CiliumEndpoints carry the node's IP in the same field.
      tunnel = nodeIPByName.get(node) ?? (isIPv4(node) ? node : undefined);
    }
    status.networking.addressing.forEach((pair, i) => {
      if (pair.ipv4 === undefined || pair.ipv4 === '') return;
      if (!isIPv4(pair.ipv4)) {
        problems.push({ object: cep, path: `status.networking.addressing[${i}].ipv4`, message: `${JSON.stringify(pair.ipv4)} is not an IPv4 address` });
        return;
      }
      endpoints.add(withTunnel(`${pair.ipv4}/32`, identity, tunnel));
    });
  }

  return { rows: { local: local.sorted(), node: remote.sorted(), endpoint: endpoints.sorted() }, problems };
}
