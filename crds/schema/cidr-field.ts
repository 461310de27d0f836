// A string field holding one CIDR: `format: cidr` plus cidrPattern (crds/cidr.ts). Both are
// OpenAPI checks, which cost nothing in the apiserver's CEL budget, so lists of CIDRs need no
// bound; the pattern also bounds the length.
import { cidrPattern } from '../cidr.js';
import { str } from './openapi.js';
import type { Extra, SchemaProps } from './openapi.js';

export function cidrField(extra: Extra = {}): SchemaProps {
  return str({ format: 'cidr', pattern: cidrPattern, ...extra });
}
