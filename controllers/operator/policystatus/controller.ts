// CNP/CCNP status: the `Valid` condition as upstream's operator/pkg/networkpolicy sets it (message
// "Policy validation succeeded", or the validation errors; upstream sets no reason), from the CRD
// validator plus the agent's own parser, and beyond upstream an `Enforced` condition summed from
// what every agent reports in its CiliumNode (controllers/policystatus/realized.ts).
//
// Cost at scale: a CiliumNode update enqueues only the policies whose entry in that node's report
// changed, each after a debounce (the queue coalesces a key, so a roll-out over 1,000 nodes folds
// into a few reconciles per policy), and a reconcile writes status only when a condition's
// status, reason or message changed: O(policies) writes per roll-out, never O(nodes × policies).
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, CiliumNode, NetworkPolicyCondition } from '../../../crds/gen/index.js';
import type { FieldError } from '../../../crds/validation.js';
import { parseCiliumPolicy } from '../../agent/policy/parse.js';
import { PolicyParseError } from '../../agent/policy/rule.js';
import { decodeRealized, enforcedCondition, REALIZED_ANNOTATION, summarizeEnforcement, type NodeReport, type RealizedReport } from '../../policystatus/realized.js';
import { isNotFound, type ApiClient } from '../../runtime/apiclient.js';
import { setCondition, type Condition } from '../../runtime/conditions.js';
import type { Controller, ReconcileContext, Reconciler } from '../../runtime/controller.js';
import * as kinds from '../../runtime/kinds.js';
import { objectKey, type KubeObject, type ResourceType } from '../../runtime/kinds.js';
import type { Resource } from '../../runtime/resource.js';
import { applyStatus } from '../../runtime/ssa.js';
import { fieldErrorsMessage, type OperatorResources } from '../resources.js';

export const POLICY_STATUS_FIELD_MANAGER = 'cilium-operator-policystatus';
export const VALID_MESSAGE = 'Policy validation succeeded';
/** How long node reports for one policy are collected before its status is computed. */
export const DEFAULT_DEBOUNCE_MS = 1000;

type Policy = CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy;

const cnpPrefix = 'cnp:';
const ccnpPrefix = 'ccnp:';
const uidIndex = 'uid';

export interface PolicyStatusOptions {
  client: ApiClient;
  resources: Pick<OperatorResources, 'ciliumNetworkPolicies' | 'ciliumClusterwideNetworkPolicies' | 'ciliumNodes' | 'onInvalid'>;
  clusterName: string;
  debounceMs?: number;
}

function reportOf(node: CiliumNode): RealizedReport | Error | undefined {
  const text = node.metadata.annotations?.[REALIZED_ANNOTATION];
  return text === undefined ? undefined : decodeRealized(text);
}

function sameReport(a: RealizedReport | Error | undefined, b: RealizedReport | Error | undefined, uid: string): boolean {
  if (a instanceof Error || b instanceof Error) return a instanceof Error && b instanceof Error && a.message === b.message;
  const x = a?.get(uid);
  const y = b?.get(uid);
  return x?.generation === y?.generation && x?.error === y?.error;
}

export class PolicyStatusReconciler implements Reconciler {
  /** Decoded reports by node, decoded once per CiliumNode change. */
  private readonly reports = new Map<string, RealizedReport | Error | undefined>();
  /** Policies the validator refused (kept out of the stores), by queue key. */
  private readonly invalid = new Map<string, { obj: KubeObject; errors: FieldError[] }>();
  private readonly debounceMs: number;

  constructor(private readonly opts: PolicyStatusOptions) {
    this.debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    const { ciliumNetworkPolicies: cnps, ciliumClusterwideNetworkPolicies: ccnps } = opts.resources;
    for (const r of [cnps, ccnps] as Resource<Policy>[]) r.store.addIndex(uidIndex, (o) => (o.metadata.uid ? [o.metadata.uid] : []));
  }

  /** Wires the watches into `controller`: policies directly, node reports debounced. */
  bind(controller: Controller): Controller {
    const { ciliumNetworkPolicies: cnps, ciliumClusterwideNetworkPolicies: ccnps, ciliumNodes } = this.opts.resources;
    controller.watch(cnps, (o) => [cnpPrefix + objectKey(o)]);
    controller.watch(ccnps, (o) => [ccnpPrefix + objectKey(o)]);
    this.opts.resources.onInvalid((type, obj, errors) => {
      const key = this.keyOf(type, obj);
      if (key === undefined) return;
      this.invalid.set(key, { obj, errors });
      controller.enqueue(key);
    });
    const later = (key: string) => controller.queue.addAfter(key, this.debounceMs);
    const allPolicies = () => [...cnps.store.list(), ...ccnps.store.list()].forEach((p) => later(this.policyKey(p)));
    ciliumNodes.on({
      add: (n) => {
        this.reports.set(n.metadata.name as string, reportOf(n));
        allPolicies();
      },
      update: (_old, n) => {
        const name = n.metadata.name as string;
        const before = this.reports.get(name);
        const after = reportOf(n);
        this.reports.set(name, after);
        const uids = new Set([...(before instanceof Map ? before.keys() : []), ...(after instanceof Map ? after.keys() : [])]);
        if (before instanceof Error || after instanceof Error) return allPolicies();
        for (const uid of uids) {
          if (sameReport(before, after, uid)) continue;
          for (const p of [...cnps.store.byIndex(uidIndex, uid), ...ccnps.store.byIndex(uidIndex, uid)]) later(this.policyKey(p));
        }
      },
      delete: (n) => {
        this.reports.delete(n.metadata.name as string);
        allPolicies();
      },
    });
    return controller;
  }

  private keyOf(type: ResourceType, obj: KubeObject): string | undefined {
    if (type.kind === kinds.ciliumNetworkPolicies.kind) return cnpPrefix + objectKey(obj);
    if (type.kind === kinds.ciliumClusterwideNetworkPolicies.kind) return ccnpPrefix + objectKey(obj);
    return undefined;
  }

  private policyKey(p: Policy): string {
    return (p.kind === 'CiliumNetworkPolicy' ? cnpPrefix : ccnpPrefix) + objectKey(p);
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<void> {
    const namespaced = key.startsWith(cnpPrefix);
    const type = namespaced ? kinds.ciliumNetworkPolicies : kinds.ciliumClusterwideNetworkPolicies;
    const storeKey = key.slice(namespaced ? cnpPrefix.length : ccnpPrefix.length);
    const resource = (namespaced ? this.opts.resources.ciliumNetworkPolicies : this.opts.resources.ciliumClusterwideNetworkPolicies) as Resource<Policy>;
    const policy = resource.store.get(storeKey);
    if (policy === undefined) {
      const refused = this.invalid.get(key);
      if (refused === undefined) return;
      this.invalid.delete(key);
      const conditions = (refused.obj as { status?: { conditions?: NetworkPolicyCondition[] } }).status?.conditions;
      await this.write(type, refused.obj, conditions, [{ type: 'Valid', status: 'False', message: fieldErrorsMessage(refused.errors) }], ctx);
      return;
    }
    this.invalid.delete(key);
    const generation = policy.metadata.generation ?? 0;
    const nodes: NodeReport[] = this.opts.resources.ciliumNodes.store.keys().map((node) => ({ node, report: this.reports.get(node) }));
    const summary = summarizeEnforcement(policy.metadata.uid ?? '', generation, nodes);
    const enforced = enforcedCondition(generation, summary);
    await this.write(type, policy, policy.status?.conditions, [this.validCondition(policy), enforced], ctx);
  }

  private validCondition(policy: Policy): Omit<Condition, 'lastTransitionTime'> {
    try {
      parseCiliumPolicy(policy, { clusterName: this.opts.clusterName });
      return { type: 'Valid', status: 'True', message: VALID_MESSAGE };
    } catch (err) {
      // Anything the parser throws makes the policy invalid; retrying would not change it.
      const message = err instanceof PolicyParseError ? err.errors.map((e) => `${e.field}: ${e.reason}`).join('; ') : (err as Error).message;
      return { type: 'Valid', status: 'False', message };
    }
  }

  // Writes only when a condition's status, reason or message differs from what the object holds.
  private async write(
    type: ResourceType,
    obj: KubeObject,
    current: readonly NetworkPolicyCondition[] | undefined,
    desired: Omit<Condition, 'lastTransitionTime'>[],
    ctx: ReconcileContext,
  ): Promise<void> {
    const unchanged = desired.every((d) => {
      const c = current?.find((x) => x.type === d.type);
      return c !== undefined && c.status === d.status && (c.reason ?? '') === (d.reason ?? '') && (c.message ?? '') === (d.message ?? '');
    });
    if (unchanged) return;
    let conditions: Condition[] = [...(current ?? [])];
    for (const d of desired) conditions = setCondition(conditions, d);
    // /status never creates: a policy deleted meanwhile answers 404.
    const { name, namespace } = obj.metadata ?? {};
    try {
      await applyStatus(this.opts.client, type, { metadata: { name, namespace }, status: { conditions } }, { fieldManager: POLICY_STATUS_FIELD_MANAGER, force: true });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    ctx.log.info('policy status updated', { policy: `${namespace ? `${namespace}/` : ''}${name}`, conditions: desired.map((d) => `${d.type}=${d.status}`).join(',') });
  }
}
