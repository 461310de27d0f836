// What each agent realized of each policy, and how the operator sums it up into a policy's
// `Enforced` condition.
//
// Shape: every agent writes its report into an annotation of ITS OWN CiliumNode, as compact JSON
// `{"<policy uid>": {"g": <generation>, "e": "<error>"}}` ("e" only when the agent failed). Why:
// - one writer per object: 1,000 agents never contend for one policy's status (an agent-written
//   policy status, as upstream's old `status.nodes`, made every agent rewrite every policy: O(nodes ×
//   policies) conflicting writes, and was dropped upstream for that reason);
// - the operator already watches CiliumNodes (IPAM), so reports cost no extra watch;
// - keyed by uid, not name: a policy deleted and re-created under the same name is a new policy,
//   and a stale report for the old one can never count for the new one;
// - the generation says WHICH spec a node enforces, so the operator tells "enforces the current
//   spec" from "still on an older one" without clocks;
// - compact: ~40 bytes per policy, so a node fits ~4,000 policies in MAX_REPORT_BYTES. Kubernetes
//   refuses an object whose annotations pass 256 KiB in all, and an apply refused for size would
//   fail forever: past the budget, errors are shortened, then policies are left out and a
//   TRUNCATED_KEY entry says so, which the operator counts as a failure for every policy the
//   report lacks (fail toward "not enforced").
// The operator writes a policy's status only when its summary changes (see ./controller.ts), so a
// roll-out over 1,000 nodes costs O(policies) status writes, not O(nodes × policies).

/** The CiliumNode annotation an agent writes its report into. */
export const REALIZED_ANNOTATION = 'policy.cilium-ts.io/realized';

export interface RealizedPolicy {
  /** metadata.generation of the policy the agent realized. */
  generation: number;
  /** Why the agent could not realize that generation; absent when it did. */
  error?: string;
}

/** policy uid → what this node realized of it. */
export type RealizedReport = Map<string, RealizedPolicy>;

/** Longest error kept per policy: the report is one annotation, and its readers need the gist only. */
export const MAX_ERROR_LENGTH = 256;
/** Longest error kept per policy when the full ones do not fit MAX_REPORT_BYTES. */
export const SHORT_ERROR_LENGTH = 64;
/** The report's share of the CiliumNode's 256 KiB annotation budget; the rest is left to others. */
export const MAX_REPORT_BYTES = 192 * 1024;
/** The entry of a truncated report; never a uid. Its error says how many policies were left out. */
export const TRUNCATED_KEY = '*';

interface Wire {
  g: number;
  e?: string;
}

/**
 * The annotation value for `report`, at most `maxBytes` long; entries sorted by uid so an
 * unchanged report is an unchanged string. What does not fit is left out, from the last uid on,
 * behind a TRUNCATED_KEY entry.
 */
export function encodeRealized(report: ReadonlyMap<string, RealizedPolicy>, maxBytes = MAX_REPORT_BYTES): string {
  const uids = [...report.keys()].sort();
  const entry = (uid: string, errorLength: number): string => {
    const r = report.get(uid) as RealizedPolicy;
    const wire: Wire = r.error === undefined ? { g: r.generation } : { g: r.generation, e: r.error.slice(0, errorLength) };
    return `${JSON.stringify(uid)}:${JSON.stringify(wire)}`;
  };
  for (const errorLength of [MAX_ERROR_LENGTH, SHORT_ERROR_LENGTH]) {
    const text = `{${uids.map((uid) => entry(uid, errorLength)).join(',')}}`;
    if (Buffer.byteLength(text) <= maxBytes) return text;
  }
  const marker = (omitted: number) =>
    `${JSON.stringify(TRUNCATED_KEY)}:${JSON.stringify({ g: 0, e: `report truncated to ${maxBytes} bytes: ${omitted} of ${uids.length} policies left out` } satisfies Wire)}`;
  const kept: string[] = [];
  // Braces, and the marker at its widest (every policy left out).
  let size = 2 + Buffer.byteLength(marker(uids.length));
  for (const uid of uids) {
    const text = entry(uid, SHORT_ERROR_LENGTH);
    const cost = Buffer.byteLength(text) + 1;
    if (size + cost > maxBytes) break;
    kept.push(text);
    size += cost;
  }
  return `{${[...kept, marker(uids.length - kept.length)].join(',')}}`;
}

/** The report in an annotation value, or an Error naming the entry and field that is malformed. */
export function decodeRealized(annotation: string): RealizedReport | Error {
  let doc: unknown;
  try {
    doc = JSON.parse(annotation);
  } catch (err) {
    return new Error(`annotation ${REALIZED_ANNOTATION}: not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return new Error(`annotation ${REALIZED_ANNOTATION}: must be an object of policy uid → {g, e}`);
  }
  const report: RealizedReport = new Map();
  for (const [uid, v] of Object.entries(doc as Record<string, unknown>)) {
    const where = `annotation ${REALIZED_ANNOTATION}[${JSON.stringify(uid)}]`;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return new Error(`${where}: must be an object {g, e}`);
    const { g, e } = v as Record<string, unknown>;
    if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 0) return new Error(`${where}.g: must be a generation (a non-negative integer), got ${JSON.stringify(g)}`);
    if (e !== undefined && typeof e !== 'string') return new Error(`${where}.e: must be a string, got ${JSON.stringify(e)}`);
    report.set(uid, e === undefined ? { generation: g } : { generation: g, error: e });
  }
  return report;
}

export interface NodeReport {
  node: string;
  /** The node's decoded report; an Error when its annotation is malformed, undefined when it has none. */
  report: RealizedReport | Error | undefined;
}

export interface EnforcementSummary {
  /** Nodes that enforce exactly this generation. */
  enforcing: number;
  /** Nodes expected to report: every node. */
  total: number;
  /** Nodes that tried this generation and failed, by node name. */
  failed: { node: string; reason: string }[];
  /** Nodes that report nothing for this generation yet (older generation, no entry, no report). */
  stale: number;
}

/**
 * How many of `nodes` enforce generation `generation` of policy `uid`. A report for a newer
 * generation than the operator has seen counts as enforcing only once the operator sees it too
 * (the operator's view is the one the condition describes). A malformed report is a failure of
 * that node, named with the decode error, so the user sees the broken agent.
 */
export function summarizeEnforcement(uid: string, generation: number, nodes: readonly NodeReport[]): EnforcementSummary {
  const out: EnforcementSummary = { enforcing: 0, total: nodes.length, failed: [], stale: 0 };
  for (const { node, report } of nodes) {
    if (report instanceof Error) {
      out.failed.push({ node, reason: report.message });
      continue;
    }
    const r = report?.get(uid);
    const truncated = report?.get(TRUNCATED_KEY);
    // Left out of a truncated report: unknown, so not enforced.
    if (r === undefined && truncated !== undefined) out.failed.push({ node, reason: `not in its report: ${truncated.error ?? 'report truncated'}` });
    else if (r === undefined || r.generation !== generation) out.stale++;
    else if (r.error !== undefined) out.failed.push({ node, reason: r.error });
    else out.enforcing++;
  }
  out.failed.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return out;
}

/** How many failed nodes a condition message names; the rest are counted. */
export const MAX_NAMED_NODES = 10;

export interface EnforcedCondition {
  type: 'Enforced';
  status: 'True' | 'False' | 'Unknown';
  reason: 'Enforced' | 'EnforcementFailed' | 'EnforcementPending' | 'NoNodes';
  message: string;
}

/**
 * The `Enforced` condition for a summary: True when every node enforces this generation, False
 * when any node failed (named, first MAX_NAMED_NODES by name, then "and N more"), Unknown while
 * nodes are still catching up or when there are no nodes.
 */
export function enforcedCondition(generation: number, s: EnforcementSummary): EnforcedCondition {
  const head = `${s.enforcing}/${s.total} nodes enforce generation ${generation}`;
  if (s.total === 0) return { type: 'Enforced', status: 'Unknown', reason: 'NoNodes', message: 'no CiliumNodes report policy enforcement' };
  if (s.failed.length > 0) {
    const named = s.failed.slice(0, MAX_NAMED_NODES).map((f) => `${f.node}: ${f.reason}`);
    const more = s.failed.length - named.length;
    const stale = s.stale > 0 ? `; ${s.stale} pending` : '';
    return {
      type: 'Enforced',
      status: 'False',
      reason: 'EnforcementFailed',
      message: `${head}; ${s.failed.length} failed: ${named.join('; ')}${more > 0 ? `; and ${more} more` : ''}${stale}`,
    };
  }
  if (s.stale > 0) return { type: 'Enforced', status: 'Unknown', reason: 'EnforcementPending', message: `${head}; ${s.stale} pending` };
  return { type: 'Enforced', status: 'True', reason: 'Enforced', message: head };
}
