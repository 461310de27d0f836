// Test helpers shared by the policy engine's table and property tests: pod label sets as the agent
// builds them, and the verdict of an endpoint's computed policy under the datapath's lookup model.
import { ipcacheLookup, policyAllows } from '../../../datapath/maps/lookup-model.js';
import type { IPCacheEntry } from '../../../datapath/types.js';
import { LabelSet } from '../labels/labels.js';
import type { PolicyRepository } from './repository.js';
import { type EndpointInput, resolvePolicy, type ResolveOptions } from './resolve.js';
import type { Direction } from './rule.js';

/** A pod's security labels: its k8s labels, namespace, namespace labels and cluster name. */
export function podLabels(namespace: string, labels: Record<string, string>, nsLabels: Record<string, string> = {}, cluster = 'default'): LabelSet {
  const all: Record<string, string> = {
    ...labels,
    'io.kubernetes.pod.namespace': namespace,
    'io.cilium.k8s.policy.cluster': cluster,
    'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': namespace,
  };
  for (const [k, v] of Object.entries(nsLabels)) all[`io.cilium.k8s.namespace.labels.${k}`] = v;
  return LabelSet.fromRecord('k8s', all);
}

/** A packet's peer: an identity, or an address the ipcache maps to one. */
export type Peer = { identity: number } | { ip: string };

export interface Probe {
  peer: Peer;
  direction: Direction;
  protocol: number;
  port: number;
}

export function peerIdentity(peer: Peer, ipcache: readonly IPCacheEntry[]): number {
  return 'identity' in peer ? peer.identity : ipcacheLookup(ipcache, peer.ip);
}

/** Whether the endpoint's resolved policy, as the datapath would look it up, passes the probe. */
export function passes(repo: PolicyRepository, ep: EndpointInput, probe: Probe, opts: ResolveOptions = {}): boolean {
  const { entries, enforcement } = resolvePolicy(repo, ep, opts);
  return policyAllows(entries, enforcement, { peerIdentity: peerIdentity(probe.peer, repo.ipcacheEntries()), direction: probe.direction, protocol: probe.protocol, port: probe.port });
}
