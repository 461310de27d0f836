// CiliumNetworkPolicy (namespaced) and CiliumClusterwideNetworkPolicy: a Rule in spec and/or a
// list of Rules in specs, plus the status the operator's validator writes.
import { celRule, specOrSpecsRequired } from './cel-rules.js';
import { ageColumn } from './crd.js';
import type { KindDefinition, PrinterColumn } from './crd.js';
import { arr, bool, enumOf, int, mapOf, obj, str } from './openapi.js';
import type { SchemaProps } from './openapi.js';
import { policyRule } from './policy-rule.js';

const validColumn: PrinterColumn = {
  name: 'Valid',
  type: 'string',
  jsonPath: ".status.conditions[?(@.type=='Valid')].status",
};

function policyStatus(): SchemaProps {
  return obj(
    {
      conditions: arr(
        obj(
          {
            type: str({ minLength: 1 }),
            status: enumOf(['True', 'False', 'Unknown']),
            lastTransitionTime: str({ format: 'date-time' }),
            reason: str(),
            message: str(),
          },
          { title: 'NetworkPolicyCondition', required: ['type', 'status'] },
        ),
      ),
      derivativePolicies: mapOf(
        obj(
          {
            ok: bool(),
            error: str(),
            lastUpdated: str({ format: 'date-time' }),
            localPolicyRevision: int({ format: 'int64' }),
            enforcing: bool(),
            annotations: mapOf(str()),
          },
          { title: 'CiliumNetworkPolicyNodeStatus' },
        ),
        { description: 'status of policies derived from this one (ToGroups), by name' },
      ),
    },
    { title: 'CiliumNetworkPolicyStatus' },
  );
}

function policyKind(kind: string, plural: string, scope: KindDefinition['scope'], shortNames: string[]): KindDefinition {
  return {
    kind,
    plural,
    singular: kind.toLowerCase(),
    shortNames,
    scope,
    categories: ['cilium', 'ciliumpolicy'],
    columns: [ageColumn, validColumn],
    statusSubresource: true,
    fields: {
      spec: policyRule(),
      specs: arr(policyRule(), { description: 'more rules, enforced together with spec' }),
      status: policyStatus(),
    },
    validations: [celRule(specOrSpecsRequired)],
    description: `${kind} is a Cilium network policy rule set (spec and/or specs).`,
  };
}

export const ciliumNetworkPolicy = policyKind('CiliumNetworkPolicy', 'ciliumnetworkpolicies', 'Namespaced', ['cnp', 'ciliumnp']);

export const ciliumClusterwideNetworkPolicy = policyKind(
  'CiliumClusterwideNetworkPolicy',
  'ciliumclusterwidenetworkpolicies',
  'Cluster',
  ['ccnp'],
);
