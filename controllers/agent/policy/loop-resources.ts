// The watches the policy loop reads: CNPs, CCNPs, Kubernetes NetworkPolicies and CiliumIdentities.
// Policies are stored as the apiserver sends them and validated by the loop, which refuses a new
// version with a Warning naming the field and keeps the old one in force. CiliumIdentities are
// validated by the watch: one never valid stays out of the selector cache, one that turns invalid
// keeps its last valid version (controllers/runtime/resource.ts), so its packets still meet the
// denies that select it.
import type { CiliumClusterwideNetworkPolicy, CiliumIdentity, CiliumNetworkPolicy } from '../../../crds/gen/index.js';
import { validateCiliumIdentity } from '../../../crds/validation.js';
import type { ApiClient } from '../../runtime/apiclient.js';
import { ciliumClusterwideNetworkPolicies, ciliumIdentities, ciliumNetworkPolicies, type KubeObject, type ResourceType } from '../../runtime/kinds.js';
import type { Logger } from '../../runtime/log.js';
import { Resource } from '../../runtime/resource.js';
import { InvalidObjectReporter } from '../ipcache/resources.js';
import type { KubeNetworkPolicy } from './parse.js';

export const networkPolicies: ResourceType = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', plural: 'networkpolicies', namespaced: true };

export type NetworkPolicyObject = KubeNetworkPolicy & KubeObject & { kind: 'NetworkPolicy' };

export interface PolicyResources {
  cnp: Resource<CiliumNetworkPolicy>;
  ccnp: Resource<CiliumClusterwideNetworkPolicy>;
  knp: Resource<NetworkPolicyObject>;
  identities: Resource<CiliumIdentity>;
}

export interface PolicyResourceOptions {
  client: ApiClient;
  /** Reports CiliumIdentities the schema refuses (a never-valid one is kept out of the selector cache). */
  reporter?: InvalidObjectReporter;
  /** Watch namespaced policies only here (tests); every namespace by default. */
  namespace?: string;
  logger?: Logger;
}

export function policyResources(opts: PolicyResourceOptions): PolicyResources {
  const { client, logger, namespace } = opts;
  const reporter = opts.reporter ?? new InvalidObjectReporter();
  return {
    cnp: new Resource<CiliumNetworkPolicy>({ name: 'ciliumnetworkpolicies', client, type: ciliumNetworkPolicies, namespace, logger }),
    ccnp: new Resource<CiliumClusterwideNetworkPolicy>({ name: 'ciliumclusterwidenetworkpolicies', client, type: ciliumClusterwideNetworkPolicies, logger }),
    knp: new Resource<NetworkPolicyObject>({ name: 'networkpolicies', client, type: networkPolicies, namespace, logger }),
    identities: new Resource<CiliumIdentity>({
      name: 'ciliumidentities',
      client,
      type: ciliumIdentities,
      validate: validateCiliumIdentity,
      onInvalid: (obj, errors) => reporter.report(obj, errors),
      logger,
    }),
  };
}

/** The four watches as one list, to start, stop or wait for together. */
export function policyResourceList(r: PolicyResources): Resource<KubeObject>[] {
  return [r.cnp, r.ccnp, r.knp, r.identities] as Resource<KubeObject>[];
}
