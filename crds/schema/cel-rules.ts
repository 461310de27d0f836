// Every CEL rule our CRDs carry, next to the TypeScript predicate that decides the same thing, so
// the runtime validator enforces what the apiserver enforces. A rule without a twin here cannot be
// put into a schema: the builders only take rules from this table.
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

export const allCelRules: readonly CelRuleWithTwin[] = [specOrSpecsRequired, oneSubjectSelector];

export function celRule(r: CelRuleWithTwin): CelRule {
  return { rule: r.rule, message: r.message };
}
