// Numeric security identities (upstream pkg/identity/numericidentity.go): the range a cluster
// allocates global identities from (the reserved ids below it are in reserved.ts).
import { createHash } from 'node:crypto';
import type { LabelSet } from '../labels/labels.js';

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
