// Every CEL rule our CRDs carry, next to the TypeScript predicate that decides the same thing, so
// the runtime validator enforces what the apiserver enforces. A rule without a twin here cannot be
// put into a schema: the builders only take rules from this table.
import { isCidr } from '../cidr.js';
import type { CelRule } from './openapi.js';

export interface CelRuleWithTwin extends CelRule {
  /** Decides the rule for `self`, the value of the schema node the rule sits on. */
  holds(self: unknown): boolean;
}

// CEL's has() sees what is left after the apiserver dropped fields whose value is null (it does
// so for every field that is neither nullable nor defaulted, which is all of ours).
function has(self: unknown, field: string): boolean {
  if (typeof self !== 'object' || self === null) return false;
  const value = (self as Record<string, unknown>)[field];
  return value !== undefined && value !== null;
}

export const specOrSpecsRequired: CelRuleWithTwin = {
  rule: 'has(self.spec) || has(self.specs)',
  message: 'one of spec or specs is required',
  holds: (self) => has(self, 'spec') || has(self, 'specs'),
};

export const oneSubjectSelector: CelRuleWithTwin = {
  rule: 'has(self.endpointSelector) != has(self.nodeSelector)',
  message: 'exactly one of endpointSelector or nodeSelector must be set',
  holds: (self) => has(self, 'endpointSelector') !== has(self, 'nodeSelector'),
};

// `format: cidr` alone is lenient (it parses "010.0.0.0/8" as 10.0.0.0/8); the CEL network
// library parses like Go's netip.ParsePrefix and refuses that, as does crds/cidr.ts.
export const strictCidr: CelRuleWithTwin = {
  rule: 'isCIDR(self)',
  message: 'must be a CIDR: an IPv4 or IPv6 address without leading zeros, zone or IPv4-mapped form, and a prefix length',
  holds: (self) => typeof self === 'string' && isCidr(self),
};

export const allCelRules: readonly CelRuleWithTwin[] = [specOrSpecsRequired, oneSubjectSelector, strictCidr];

export function celRule(r: CelRuleWithTwin): CelRule {
  return { rule: r.rule, message: r.message };
}
