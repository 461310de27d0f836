// Numeric security identities (upstream pkg/identity/numericidentity.go): the reserved ids with
// their labels, and the range a cluster allocates global identities from.
import { createHash } from 'node:crypto';
import { LabelSet, SOURCE_RESERVED } from '../labels/labels.js';

export interface ReservedIdentity {
  id: number;
  name: string;
  labels: LabelSet;
}

function reserved(id: number, name: string, ...extra: string[]): ReservedIdentity {
  return { id, name, labels: LabelSet.parse([name, ...extra].map((n) => `${SOURCE_RESERVED}:${n}`)) };
}

/** Upstream's reserved identities; 0 (unknown) has no labels and 11-14 exist only in policy maps. */
export const RESERVED_IDENTITIES: readonly ReservedIdentity[] = [
  reserved(1, 'host'),
  reserved(2, 'world'),
  reserved(3, 'unmanaged'),
  reserved(4, 'health'),
  reserved(5, 'init'),
  reserved(6, 'remote-node'),
  // The apiserver runs on nodes in many clusters, so its identity also carries remote-node.
  reserved(7, 'kube-apiserver', 'remote-node'),
  reserved(8, 'ingress'),
  reserved(9, 'world-ipv4'),
  reserved(10, 'world-ipv6'),
];

const reservedByName = new Map(RESERVED_IDENTITIES.map((r) => [r.name, r]));

export function reservedIdentity(name: string): ReservedIdentity | undefined {
  return reservedByName.get(name);
}

export const MAX_CLUSTER_ID = 255;
/** Ids below this in each cluster's block are reserved, well-known (100-115) or user-reserved (128-255). */
export const MIN_ALLOCATION_IDENTITY = 256;
const CLUSTER_ID_SHIFT = 16;

export interface IdentityRange {
  min: number;
  max: number;
}

/**
 * The global identities cluster `clusterId` allocates: 256..65535 for cluster 0, and the same
 * offsets inside its own 2^16 block for cluster N, so ids of connected clusters never collide.
 */
export function globalIdentityRange(clusterId: number): IdentityRange {
  if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > MAX_CLUSTER_ID) {
    throw new Error(`cluster-id: ${clusterId} is not an integer in 0..${MAX_CLUSTER_ID}`);
  }
  const base = clusterId * 2 ** CLUSTER_ID_SHIFT;
  return { min: base + MIN_ALLOCATION_IDENTITY, max: base + 2 ** CLUSTER_ID_SHIFT - 1 };
}

/**
 * The ids an allocator tries for `labels`, in order: pseudo-random and spread over the range
 * like upstream's random pick, but the same sequence in every agent, so two agents allocating the
 * same new label set at once ask the apiserver for the same name and the loser's create fails
 * with AlreadyExists instead of making a duplicate identity (see crd-allocator.ts).
 */
export function* identityCandidates(labels: LabelSet, range: IdentityRange): Generator<number> {
  const size = range.max - range.min + 1;
  const seen = new Set<number>();
  for (let attempt = 0; seen.size < size; attempt++) {
    const digest = createHash('sha256').update(`${labels.key}\0${attempt}`).digest();
    const id = range.min + (digest.readUInt32BE(0) % size);
    if (seen.has(id)) continue;
    seen.add(id);
    yield id;
  }
}
