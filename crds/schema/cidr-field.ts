// A string field holding one CIDR. `format: cidr` gives the apiserver's usual message; the CEL
// rule refuses what that format lets through (see strictCidr). The length bounds are the shortest
// ("::/0") and longest ("ffff:...:ffff:255.255.255.255/128") CIDR text; maxLength also bounds the
// CEL cost estimate of every use.
import { celRule, strictCidr } from './cel-rules.js';
import { str } from './openapi.js';
import type { Extra, SchemaProps } from './openapi.js';

export const cidrMinLength = 4;
export const cidrMaxLength = 49;

export function cidrField(extra: Extra = {}): SchemaProps {
  return str({
    format: 'cidr',
    minLength: cidrMinLength,
    maxLength: cidrMaxLength,
    'x-kubernetes-validations': [celRule(strictCidr)],
    ...extra,
  });
}
