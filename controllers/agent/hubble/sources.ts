// The observer's sources over the agent's parts, so the daemon wires Hubble in a few lines:
// endpoints from the endpoint manager (and their Pods from its pod watch), identity labels from
// the policy repository's selector cache (reserved, CRD and CIDR identities), other nodes' pods
// from the CiliumEndpoint watch, rule cookies from the repository.
import type { V1Pod } from '@kubernetes/client-node';
import type { CiliumEndpoint } from '../../../crds/gen/index.js';
import type { Policy } from '../../hubble/flow-types.js';
import type { Resource } from '../../runtime/resource.js';
import type { EndpointManager } from '../endpoint/manager.js';
import type { PolicyRepository } from '../policy/repository.js';
import type { LocalEndpointInfo, ObserverSources } from './enrich.js';

export interface AgentParts {
  nodeName: string;
  clusterName: string;
  endpoints: Pick<EndpointManager, 'summaries' | 'get'>;
  pods: Pick<Resource<V1Pod>, 'store'>;
  repo: Pick<PolicyRepository, 'ruleOfCookie' | 'revision' | 'selectorCache'>;
  ciliumEndpoints: Pick<Resource<CiliumEndpoint>, 'store'>;
}

const CEP_IPV4_INDEX = 'hubble-ipv4';

export function agentObserverSources(parts: AgentParts): ObserverSources {
  const ceps = parts.ciliumEndpoints.store;
  ceps.addIndex(CEP_IPV4_INDEX, (cep) => (cep.status?.networking?.addressing ?? []).flatMap((a) => (a.ipv4 ? [a.ipv4] : [])));
  const policies = new Map<number, Policy>();
  let policiesRevision = -1;
  const local = (id: number): LocalEndpointInfo | undefined => {
    const ep = parts.endpoints.get(id);
    if (ep === undefined) return undefined;
    const pod = parts.pods.store.get(`${ep.namespace}/${ep.podName}`);
    return {
      id: ep.id,
      ipv4: ep.ipv4,
      identity: ep.identity,
      labels: ep.identityLabels,
      namespace: ep.namespace,
      podName: ep.podName,
      ifindex: ep.ifindex,
      ifname: ep.ifname,
      ...(pod?.metadata ? { pod: pod.metadata } : {}),
    };
  };
  return {
    nodeName: parts.nodeName,
    clusterName: parts.clusterName,
    localEndpointById: local,
    localEndpointByIp(ip) {
      const summary = parts.endpoints.summaries().find((s) => s.ipv4 === ip);
      return summary && local(summary.id);
    },
    identityLabels: (id) => parts.repo.selectorCache.labelsOf(id)?.strings,
    remoteEndpoint(ip) {
      const cep = ceps.byIndex(CEP_IPV4_INDEX, ip).find((c) => c.status?.networking?.node !== parts.nodeName);
      if (cep === undefined) return undefined;
      const identity = cep.status?.identity?.id;
      return { namespace: cep.metadata.namespace ?? '', podName: cep.metadata.name ?? '', ...(identity !== undefined ? { identity } : {}) };
    },
    policyOfCookie(cookie): Policy | undefined {
      // One object per cookie and revision: flows decided by the same rule share it.
      const revision = parts.repo.revision;
      if (revision !== policiesRevision) {
        policies.clear();
        policiesRevision = revision;
      }
      const cached = policies.get(cookie);
      if (cached !== undefined) return cached;
      const rule = parts.repo.ruleOfCookie(cookie);
      if (rule === undefined) return undefined;
      const { kind, namespace, name } = rule.policy;
      const policy = { kind, namespace, name, labels: [...rule.labels.strings], revision: String(revision) };
      policies.set(cookie, policy);
      return policy;
    },
  };
}
