// The reserved security identities (upstream pkg/identity/numericidentity.go): their ids, the
// labels each carries, and the ones this single-stack (IPv4) datapath assigns.
import { LabelSet, SOURCE_RESERVED } from '../labels/labels.js';

/** Upstream's reserved ids by name; 0 (unknown) has no labels and 11-14 exist only in policy maps. */
export const RESERVED_IDENTITIES = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
  'world-ipv4': 9,
  'world-ipv6': 10,
} as const;

export type ReservedName = keyof typeof RESERVED_IDENTITIES;

export const IDENTITY_HOST = RESERVED_IDENTITIES.host;
export const IDENTITY_WORLD = RESERVED_IDENTITIES.world;

export interface ReservedIdentity {
  id: number;
  name: ReservedName;
  labels: LabelSet;
}

/** A reserved identity's labels; the apiserver runs on nodes in many clusters, so its labels also carry remote-node. */
export function reservedLabels(name: ReservedName): LabelSet {
  const names = name === 'kube-apiserver' ? [name, 'remote-node'] : [name];
  return new LabelSet(names.map((key) => ({ source: SOURCE_RESERVED, key, value: '' })));
}

const ALL_RESERVED: ReadonlyMap<string, ReservedIdentity> = new Map(
  Object.entries(RESERVED_IDENTITIES).map(([name, id]) => [name, { id, name: name as ReservedName, labels: reservedLabels(name as ReservedName) }]),
);

export function reservedIdentity(name: string): ReservedIdentity | undefined {
  return ALL_RESERVED.get(name);
}

/**
 * The reserved identities an IPv4-only datapath assigns: world-ipv4 and world-ipv6 split the world
 * only in dual-stack clusters, and here all of it is world (2).
 */
export const SINGLE_STACK_RESERVED: readonly ReservedIdentity[] = [...ALL_RESERVED.values()].filter((r) => r.name !== 'world-ipv4' && r.name !== 'world-ipv6');
