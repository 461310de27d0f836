// The parsed form of every policy kind: rules with a subject selector and per-direction sections
// of peers and ports, what parse.ts produces and resolve.ts consumes.
import type { PolicyEntry } from '../../../datapath/types.js';
import type { LabelSet } from '../labels/labels.js';
import type { EndpointSelector } from './selector.js';

/** The datapath's direction type, whatever datapath/types.ts names it. */
export type Direction = PolicyEntry['direction'];

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';

export interface PolicyRef {
  kind: PolicyKind;
  /** '' for a clusterwide policy. */
  namespace: string;
  name: string;
}

export function policyRefKey(ref: PolicyRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** One port, range or ICMP type; `protocol` 0 is ANY; `name` is a named port still to resolve. */
export interface PortSpec {
  protocol: number;
  port: number;
  endPort?: number;
  name?: string;
}

/** A part of a rule we cannot enforce: it grants nothing, and is named in status and logs. */
export interface Unsupported {
  /** e.g. `specs[1].egress[0].toFQDNs`. */
  path: string;
  reason: string;
}

/** One ingress/egress(Deny) item: these peers on these ports. */
export interface RuleSection {
  direction: Direction;
  deny: boolean;
  /** Empty selects nobody; the wildcard selector selects every identity. */
  peers: EndpointSelector[];
  /** Undefined: every protocol and port; empty: nothing. */
  ports: PortSpec[] | undefined;
  path: string;
}

export interface Rule {
  policy: PolicyRef;
  /** `spec` or `specs[i]`. */
  path: string;
  /** Undefined for a nodeSelector (host) rule, which selects no endpoint here. */
  subject: EndpointSelector | undefined;
  sections: RuleSection[];
  /** Whether the rule has any item in that direction (allow or deny): what turns enforcement on. */
  hasDirection: Record<Direction, boolean>;
  /** enableDefaultDeny, defaulted as upstream's Rule.Sanitize does. */
  defaultDeny: Record<Direction, boolean>;
  /** io.cilium.k8s.policy.{derived-from,name,namespace,uid} and the rule's own labels. */
  labels: LabelSet;
  unsupported: Unsupported[];
  /**
   * The rule's 32-bit cookie in map entries and datapath events, so a flow names the rule that
   * decided it; given by the repository when the rule is stored, 0 before.
   */
  cookie: number;
}

export interface ParsedPolicy {
  ref: PolicyRef;
  rules: Rule[];
  /** Every IPv4 prefix (CIDRs and their holes) that needs a CIDR identity. */
  prefixes: string[];
  unsupported: Unsupported[];
}

export interface FieldError {
  field: string;
  reason: string;
}

export class PolicyParseError extends Error {
  constructor(
    readonly ref: PolicyRef,
    readonly errors: readonly FieldError[],
  ) {
    super(`${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} is invalid: ${errors.map((e) => `${e.field}: ${e.reason}`).join('; ')}`);
    this.name = 'PolicyParseError';
  }
}

/** One line for a policy's status message or an endpoint's log: what is not enforced, and why. */
export function unsupportedMessage(parts: readonly Unsupported[]): string {
  return parts.length === 0 ? '' : `not enforced (opens nothing): ${parts.map((u) => `${u.path}: ${u.reason}`).join('; ')}`;
}
