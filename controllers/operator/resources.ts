// The collections cilium-operator watches, each read through the generated validator: a malformed
// object gets a Warning event naming its fields and stays out of the store, so no loop ever sees
// it (issue 7 §4). One Resource per collection is shared by every duty that reads it.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type {
  CiliumClusterwideNetworkPolicy,
  CiliumEndpoint,
  CiliumIdentity,
  CiliumNetworkPolicy,
  CiliumNode,
} from '../../crds/gen/index.js';
import {
  validateCiliumClusterwideNetworkPolicy,
  validateCiliumEndpoint,
  validateCiliumIdentity,
  validateCiliumNetworkPolicy,
  validateCiliumNode,
  type FieldError,
  type ValidationResult,
} from '../../crds/validation.js';
import type { ApiClient } from '../runtime/apiclient.js';
import type { EventRecorder } from '../runtime/events.js';
import * as kinds from '../runtime/kinds.js';
import type { KubeObject, ResourceType } from '../runtime/kinds.js';
import type { Logger } from '../runtime/log.js';
import { Resource } from '../runtime/resource.js';

export type Pod = V1Pod & { metadata: NonNullable<V1Pod['metadata']> };
export type Node = V1Node & { metadata: NonNullable<V1Node['metadata']> };

export interface OperatorResources {
  ciliumNodes: Resource<CiliumNode>;
  ciliumIdentities: Resource<CiliumIdentity>;
  ciliumEndpoints: Resource<CiliumEndpoint>;
  ciliumNetworkPolicies: Resource<CiliumNetworkPolicy>;
  ciliumClusterwideNetworkPolicies: Resource<CiliumClusterwideNetworkPolicy>;
  pods: Resource<Pod>;
  nodes: Resource<Node>;
  /** Calls `listener` for every object a validator refuses, after its Warning event is sent. */
  onInvalid(listener: InvalidListener): () => void;
}

export type InvalidListener = (type: ResourceType, obj: KubeObject, errors: FieldError[]) => void;

export interface ResourceOptions {
  client: ApiClient;
  recorder: EventRecorder;
  logger: Logger;
  /** Only this namespace for the namespaced collections (tests); all namespaces when absent. */
  namespace?: string;
}

/** "spec.ipam.podCIDRs[0]: Invalid value ...; metadata.name: Required value" */
export function fieldErrorsMessage(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.path}: ${e.message}`).join('; ');
}

export function operatorResources(opts: ResourceOptions): OperatorResources {
  const listeners = new Set<InvalidListener>();
  const make = <T extends KubeObject>(name: string, type: ResourceType, validate?: (o: unknown) => ValidationResult<T>) =>
    new Resource<T>({
      name,
      client: opts.client,
      type,
      namespace: type.namespaced ? opts.namespace : undefined,
      logger: opts.logger,
      validate,
      onInvalid: (obj, errors) => {
        void opts.recorder.event(obj, 'Warning', 'InvalidObject', `ignored by cilium-operator: ${fieldErrorsMessage(errors)}`);
        for (const l of listeners) l(type, obj, errors);
      },
    });
  return {
    ciliumNodes: make('ciliumnodes', kinds.ciliumNodes, validateCiliumNode),
    ciliumIdentities: make('ciliumidentities', kinds.ciliumIdentities, validateCiliumIdentity),
    ciliumEndpoints: make('ciliumendpoints', kinds.ciliumEndpoints, validateCiliumEndpoint),
    ciliumNetworkPolicies: make('ciliumnetworkpolicies', kinds.ciliumNetworkPolicies, validateCiliumNetworkPolicy),
    ciliumClusterwideNetworkPolicies: make('ciliumclusterwidenetworkpolicies', kinds.ciliumClusterwideNetworkPolicies, validateCiliumClusterwideNetworkPolicy),
    pods: make<Pod>('pods', kinds.pods),
    nodes: make<Node>('nodes', kinds.nodes),
    onInvalid(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
