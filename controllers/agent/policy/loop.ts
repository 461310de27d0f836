// The agent's policy loop: CNPs, CCNPs, NetworkPolicies and CiliumIdentities feed the policy
// repository; each change recomputes only the local endpoints whose identities it can affect, and
// the CIDR identities the policies need go to the ipcache. It is also the endpoint manager's
// policy source: an endpoint's policy is resolvePolicy over the repository.
//
// A policy version that fails validation or parsing is refused with a Warning event naming the
// field, and the version before it stays in force, as upstream's agent keeps the rules it had
// when an import fails. Dropping the old version instead could open what it closed.
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { CiliumClusterwideNetworkPolicy, CiliumEndpoint, CiliumIdentity, CiliumNetworkPolicy } from '../../../crds/gen/index.js';
import { validateCiliumClusterwideNetworkPolicy, validateCiliumNetworkPolicy, type ValidationResult } from '../../../crds/validation.js';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../../datapath/maps/protocols.js';
import type { IPCacheEntry } from '../../../datapath/types.js';
import { Controller, type ReconcileContext } from '../../runtime/controller.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { KubeObject } from '../../runtime/kinds.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import type { RealizedPolicy, RealizedReport } from '../../policystatus/realized.js';
import type { EndpointRecord } from '../endpoint/endpoint.js';
import { EndpointNotFoundError, type ComputedPolicy, type EndpointPolicySource } from '../endpoint/manager.js';
import { identityId, identityLabels } from '../identity/cilium-identity.js';
import { MIN_ALLOCATION_IDENTITY } from '../identity/numeric.js';
import { LabelSet } from '../labels/labels.js';
import { agentMetrics, type AgentMetrics } from '../metrics.js';
import type { NetworkPolicyObject, PolicyResources } from './loop-resources.js';
import {
  type NamedPort,
  type PolicyEnforcementMode,
  type PolicyKind,
  PolicyParseError,
  type PolicyRef,
  policyRefKey,
  PolicyRepository,
  resolvePolicy,
  type Rule,
  unsupportedMessage,
} from './index.js';

/** Warning reason: a policy version was refused; its previous version (if any) stays in force. */
export const REASON_POLICY_INVALID = 'PolicyInvalid';
/** Warning reason: parts of a policy are not enforced and open nothing. */
export const REASON_POLICY_NOT_ENFORCED = 'PolicyNotEnforced';

const IDENTITY_KIND = 'CiliumIdentity';
// Regenerates what an earlier key left owed (failed endpoints, identities learned in compute()).
const SETTLE_KEY = 'Regenerate//owed';
// The cluster's named ports (CiliumEndpoints) changed: egress named ports may resolve differently.
const NAMED_PORTS_KEY = 'NamedPorts//cluster';
const DENY_ALL: ComputedPolicy = { entries: [], enforcement: { ingress: true, egress: true } };
const PROTOCOL_NUMBERS: Record<string, number> = { TCP: IPPROTO_TCP, UDP: IPPROTO_UDP, SCTP: IPPROTO_SCTP };

type PolicyObject = CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | NetworkPolicyObject;

/** What the loop needs of the endpoint manager. */
export interface PolicyEndpoints {
  summaries(): readonly Pick<EndpointRecord, 'id' | 'identity'>[];
  regenerate(id: number): Promise<unknown>;
}

export interface PolicyLoopOptions {
  resources: PolicyResources;
  clusterName?: string;
  mode?: PolicyEnforcementMode;
  allowLocalhost?: boolean;
  /**
   * Named ports of the cluster's pods, for egress named ports (upstream's global named-port map);
   * call `namedPortsChanged()` when they change.
   */
  clusterNamedPorts?: () => readonly NamedPort[];
  /** Receives the CIDR identity rows whenever they change (the ipcache's `cidr` source). */
  ipcache?: (rows: readonly IPCacheEntry[]) => Promise<void>;
  events?: EventRecorder;
  /** Called when realized() changed (for the node's report to the operator). */
  onRealized?: () => void;
  registry?: Registry;
  logger?: Logger;
}

/** What this node did with one version of a CNP or CCNP, by policy key. */
interface PolicyOutcome {
  uid: string;
  generation: number;
  /** Why the version is refused; the previous one stays in force. */
  refused?: string;
  /** What of it is not enforced. */
  unsupported?: string;
}

/** Named ports of CiliumEndpoints (cluster-wide), for egress named ports. */
export function ciliumEndpointNamedPorts(ceps: readonly CiliumEndpoint[]): NamedPort[] {
  return ceps.flatMap((cep) =>
    (cep.status?.['named-ports'] ?? []).flatMap((p) => {
      const protocol = PROTOCOL_NUMBERS[p.protocol ?? 'TCP'];
      return p.name && p.port && protocol !== undefined ? [{ name: p.name, port: p.port, protocol }] : [];
    }),
  );
}

function loopKey(kind: PolicyKind | typeof IDENTITY_KIND, obj: KubeObject): string {
  return `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

function splitLoopKey(key: string): { kind: string; namespace: string; name: string } {
  const [kind = '', namespace = '', ...rest] = key.split('/');
  return { kind, namespace, name: rest.join('/') };
}

function describeRef(ref: PolicyRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}

/** Whether a rule has an egress port given by name, which resolves against the cluster's named ports. */
function usesEgressNamedPort(rule: Rule): boolean {
  return rule.sections.some((s) => s.direction === 'egress' && s.ports?.some((p) => p.name !== undefined) === true);
}

/** Rows of both lists by prefix, `next` winning: what the ipcache holds while a change is applied. */
function mergeRows(prev: readonly IPCacheEntry[], next: readonly IPCacheEntry[]): IPCacheEntry[] {
  const byPrefix = new Map(prev.map((r) => [r.prefix, r]));
  for (const r of next) byPrefix.set(r.prefix, r);
  return [...byPrefix.values()];
}

export class PolicyLoop {
  readonly repo: PolicyRepository;
  readonly controller: Controller;
  private readonly log: Logger;
  private readonly metrics?: AgentMetrics;
  private endpoints?: PolicyEndpoints;
  /** The resourceVersion each policy key was last applied or refused at. */
  private readonly applied = new Map<string, string>();
  /** When the loop first saw a change of a key it has not applied yet (performance.now()). */
  private readonly observed = new Map<string, number>();
  /** Identities fed to the repository, with their label key. */
  private readonly identities = new Map<number, string>();
  /** Identities whose local endpoints still need a regeneration. */
  private readonly owed = new Set<number>();
  /** Observation times of changes whose endpoints are still being regenerated. */
  private pendingDelays: number[] = [];
  private ipcacheRows: readonly IPCacheEntry[] = [];
  // Undefined until the first write, so the start clears CIDR rows a previous run left behind.
  private ipcacheSynced?: string;
  private readonly outcomes = new Map<string, PolicyOutcome>();
  /** Policy keys whose last regeneration failed, with why. */
  private readonly regenerationErrors = new Map<string, string>();
  private published: RealizedReport = new Map();
  /** The last unsupported-parts note logged per endpoint, so a regeneration logs only news. */
  private readonly endpointNotes = new Map<number, string>();
  /**
   * Endpoints whose policy could not be computed (they deny everything), with their labels (absent
   * when those did not parse either) and why: a failed regeneration, and an error in the report
   * of every policy that selects them.
   */
  private readonly computeFailures = new Map<number, { labels?: LabelSet; error: string }>();
  /** The cluster named ports the endpoints were last computed with, serialized. */
  private namedPortsSeen = '';

  constructor(private readonly opts: PolicyLoopOptions) {
    this.log = opts.logger ?? newLogger('policy');
    this.repo = new PolicyRepository({ clusterName: opts.clusterName });
    if (opts.registry) this.metrics = agentMetrics(opts.registry);
    this.controller = new Controller({ name: 'policy', reconciler: { reconcile: (key, ctx) => this.reconcile(key, ctx) }, registry: opts.registry, logger: this.log });
    const { cnp, ccnp, knp, identities } = opts.resources;
    const watch = <T extends KubeObject>(r: Resource<T>, kind: PolicyKind | typeof IDENTITY_KIND) =>
      this.controller.watch(r, (o) => {
        const key = loopKey(kind, o);
        // Policy changes are timed to their enforcement; identity changes are not.
        if (kind !== IDENTITY_KIND && !this.observed.has(key)) this.observed.set(key, performance.now());
        return [key];
      });
    watch(cnp, 'CiliumNetworkPolicy');
    watch(ccnp, 'CiliumClusterwideNetworkPolicy');
    watch(knp, 'NetworkPolicy');
    watch(identities, IDENTITY_KIND);
  }

  /** The endpoints to regenerate; bound after construction because the manager takes policySource(). */
  bindEndpoints(endpoints: PolicyEndpoints): void {
    this.endpoints = endpoints;
  }

  /** The endpoint manager's policy source. */
  policySource(): EndpointPolicySource {
    return { compute: (ep) => Promise.resolve(this.compute(ep)) };
  }

  /**
   * Feeds every stored identity and policy to the repository and pushes the CIDR rows, without
   * regenerating anything: for the start, after the caches synced and before the endpoints are
   * restored, so a restored endpoint gets the policy it had and not an empty one.
   */
  async prime(): Promise<void> {
    for (const ci of this.opts.resources.identities.store.list()) this.applyIdentity(ci.metadata.name ?? '');
    for (const kind of ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'] as const) {
      for (const obj of this.resourceOf(kind).store.list()) {
        const key = loopKey(kind, obj);
        this.applyPolicy({ kind, namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' }, key, this.log);
      }
    }
    this.owed.clear();
    this.pendingDelays = [];
    this.observed.clear();
    this.namedPortsSeen = JSON.stringify(this.opts.clusterNamedPorts?.() ?? []);
    await this.syncIPCache(this.repo.ipcacheEntries());
    this.updateGauges();
    this.publish();
    this.log.info('policy repository primed', { rules: this.repo.rules().length, revision: this.repo.revision, identities: this.identities.size });
  }

  /** The cluster's named ports changed: regenerates the endpoints whose egress uses one by name. */
  namedPortsChanged(): void {
    this.controller.enqueue(NAMED_PORTS_KEY);
  }

  /**
   * The endpoint manager's set of endpoints changed: forgets what it kept of endpoints that are
   * gone, so a deleted endpoint's failure no longer counts against its policies.
   */
  endpointsChanged(): void {
    const live = new Set(this.endpoints?.summaries().map((e) => e.id) ?? []);
    for (const id of this.endpointNotes.keys()) if (!live.has(id)) this.endpointNotes.delete(id);
    let forgot = false;
    for (const id of this.computeFailures.keys()) if (!live.has(id)) forgot = this.computeFailures.delete(id);
    if (forgot) this.publish();
  }

  /** Runs until `signal` aborts; the resources must be started by the caller. */
  start(signal: AbortSignal): Promise<void> {
    if (this.endpoints === undefined) return Promise.reject(new Error('policy loop: start before bindEndpoints'));
    return this.controller.start(signal);
  }

  private async reconcile(key: string, ctx: ReconcileContext): Promise<void> {
    const { kind, namespace, name } = splitLoopKey(key);
    if (kind === IDENTITY_KIND) this.applyIdentity(name);
    else if (kind === 'CiliumNetworkPolicy' || kind === 'CiliumClusterwideNetworkPolicy' || kind === 'NetworkPolicy') this.applyPolicy({ kind, namespace, name }, key, ctx.log);
    else if (key === NAMED_PORTS_KEY) this.applyNamedPorts();
    this.updateGauges();
    const rows = this.repo.ipcacheEntries();
    const rowsChanged = JSON.stringify(rows) !== this.ipcacheSynced;
    // New CIDR identities reach the ipcache before any endpoint allows them, and old ones leave
    // only after no endpoint does, so no endpoint ever allows a CIDR identity the ipcache lacks.
    try {
      if (rowsChanged) await this.syncIPCache(mergeRows(this.ipcacheRows, rows));
      await this.settle(ctx.log);
      if (rowsChanged) await this.syncIPCache(rows);
      this.regenerationErrors.delete(key);
    } catch (err) {
      this.regenerationErrors.set(key, (err as Error).message);
      throw err;
    } finally {
      this.publish();
    }
  }

  /**
   * What this node realized of each CNP and CCNP it holds, by uid (controllers/policystatus/
   * realized.ts): the generation it last took in, with an error when that version was refused,
   * when parts of it are not enforced, or when regenerating its endpoints failed. Read between
   * reconciles, so a version counts only once its endpoints were regenerated.
   */
  realized(): RealizedReport {
    return new Map(this.published);
  }

  private publish(): void {
    const next: RealizedReport = new Map();
    for (const [key, o] of this.outcomes) {
      const error = o.refused ?? this.regenerationErrors.get(key) ?? this.computeFailureOf(key) ?? o.unsupported;
      const entry: RealizedPolicy = error === undefined ? { generation: o.generation } : { generation: o.generation, error };
      next.set(o.uid, entry);
    }
    const changed = JSON.stringify([...next]) !== JSON.stringify([...this.published]);
    this.published = next;
    if (changed) this.opts.onRealized?.();
  }

  /** Why an endpoint the policy of `key` selects denies everything, if one does. */
  private computeFailureOf(key: string): string | undefined {
    const { kind, namespace, name } = splitLoopKey(key);
    const rules = this.repo.get({ kind: kind as PolicyKind, namespace, name })?.rules ?? [];
    for (const [id, f] of this.computeFailures) {
      // Unknown labels: it may be selected, and the report fails toward "not enforced".
      if (f.labels === undefined || rules.some((r) => r.subject?.matches(f.labels as LabelSet) === true)) {
        return `endpoint ${id}: policy could not be computed, all its traffic is denied: ${f.error}`;
      }
    }
    return undefined;
  }

  private recordOutcome(key: string, ref: PolicyRef, obj: PolicyObject, outcome: Pick<PolicyOutcome, 'refused' | 'unsupported'>): void {
    const uid = obj.metadata?.uid;
    // NetworkPolicies have no status of ours to report into.
    if (ref.kind === 'NetworkPolicy' || uid === undefined) return;
    this.outcomes.set(key, { uid, generation: obj.metadata?.generation ?? 0, ...outcome });
  }

  private resourceOf(kind: PolicyKind): Resource<PolicyObject> {
    const r = this.opts.resources;
    const byKind = { CiliumNetworkPolicy: r.cnp, CiliumClusterwideNetworkPolicy: r.ccnp, NetworkPolicy: r.knp } as const;
    return byKind[kind] as unknown as Resource<PolicyObject>;
  }

  private applyPolicy(ref: PolicyRef, key: string, log: Logger): void {
    const resource = this.resourceOf(ref.kind);
    const obj = resource.store.get(ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name);
    if (obj === undefined) {
      this.applied.delete(key);
      this.outcomes.delete(key);
      this.regenerationErrors.delete(key);
      this.take(key, this.repo.delete(ref).affected);
      return;
    }
    const version = obj.metadata?.resourceVersion ?? '';
    if (this.applied.get(key) === version) {
      this.observed.delete(key);
      return;
    }
    this.applied.set(key, version);
    const invalid = this.validationErrors(ref.kind, obj);
    if (invalid.length > 0) return this.refuse(ref, key, obj, invalid, log);
    let affected: Set<number>;
    try {
      affected = this.repo.upsert(obj).affected;
    } catch (err) {
      if (!(err instanceof PolicyParseError)) throw err;
      return this.refuse(ref, key, obj, err.errors.map((e) => `${e.field}: ${e.reason}`), log);
    }
    this.metrics?.policyChange.inc({ outcome: 'success' });
    const parsed = this.repo.get(ref);
    log.info('policy imported', { policy: policyRefKey(ref), revision: this.repo.revision, rules: parsed?.rules.length ?? 0 });
    const unsupported = parsed === undefined || parsed.unsupported.length === 0 ? undefined : unsupportedMessage(parsed.unsupported);
    if (unsupported !== undefined) {
      log.warn('policy partly not enforced', { policy: policyRefKey(ref), unsupported: parsed?.unsupported });
      void this.opts.events?.event(obj, 'Warning', REASON_POLICY_NOT_ENFORCED, `${describeRef(ref)}: ${unsupported}`);
    }
    this.recordOutcome(key, ref, obj, { unsupported });
    this.take(key, affected);
  }

  private validationErrors(kind: PolicyKind, obj: PolicyObject): string[] {
    let r: ValidationResult<unknown> | undefined;
    if (kind === 'CiliumNetworkPolicy') r = validateCiliumNetworkPolicy(obj);
    else if (kind === 'CiliumClusterwideNetworkPolicy') r = validateCiliumClusterwideNetworkPolicy(obj);
    return r === undefined || r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
  }

  private refuse(ref: PolicyRef, key: string, obj: PolicyObject, errors: string[], log: Logger): void {
    this.observed.delete(key);
    this.metrics?.policyChange.inc({ outcome: 'fail' });
    const kept = this.repo.get(ref) !== undefined ? 'its previous version stays in force' : 'nothing of it is enforced';
    const message = `${describeRef(ref)} refused, ${kept}: ${errors.join('; ')}`;
    log.warn('policy refused', { policy: policyRefKey(ref), resourceVersion: obj.metadata?.resourceVersion, errors });
    void this.opts.events?.event(obj, 'Warning', REASON_POLICY_INVALID, message);
    this.recordOutcome(key, ref, obj, { refused: message });
  }

  private applyIdentity(name: string): void {
    const ci: CiliumIdentity | undefined = this.opts.resources.identities.store.get(name);
    const id = ci === undefined ? Number(name) : identityId(ci);
    // Reserved identities are built into the repository; a CRD never overrides them.
    if (id === undefined || !Number.isInteger(id) || id < MIN_ALLOCATION_IDENTITY) return;
    const key = loopKey(IDENTITY_KIND, { metadata: { name } });
    if (ci === undefined) {
      if (this.identities.delete(id)) this.take(key, this.repo.removeIdentity(id).affected);
      return;
    }
    const labels = identityLabels(ci);
    if (this.identities.get(id) === labels.key) return;
    this.identities.set(id, labels.key);
    this.take(key, this.repo.upsertIdentity(id, labels).affected);
  }

  /** Owes a regeneration to the local endpoints whose egress names a port, if the named ports changed. */
  private applyNamedPorts(): void {
    const seen = JSON.stringify(this.opts.clusterNamedPorts?.() ?? []);
    if (seen === this.namedPortsSeen) return;
    this.namedPortsSeen = seen;
    const usesNamed = this.repo.rules().filter(usesEgressNamedPort);
    if (usesNamed.length === 0) return;
    for (const ep of this.endpoints?.summaries() ?? []) {
      const labels = this.repo.selectorCache.labelsOf(ep.identity);
      if (labels === undefined || usesNamed.some((r) => r.subject?.matches(labels) === true)) this.owed.add(ep.identity);
    }
  }

  /** Records what a change owes: its identities' endpoints, and its delay once they are done. */
  private take(key: string, affected: ReadonlySet<number>): void {
    for (const id of affected) this.owed.add(id);
    const seen = this.observed.get(key);
    this.observed.delete(key);
    if (seen !== undefined && affected.size > 0) this.pendingDelays.push(seen);
  }

  /** Regenerates the local endpoints of the owed identities; throws (to retry) when any failed. */
  private async settle(log: Logger): Promise<void> {
    const endpoints = this.endpoints;
    if (endpoints === undefined) throw new Error('policy loop: no endpoint manager bound');
    const ids = new Set(this.owed);
    const delays = this.pendingDelays;
    this.owed.clear();
    this.pendingDelays = [];
    const targets = endpoints.summaries().filter((ep) => ids.has(ep.identity));
    const failed: string[] = [];
    for (const ep of targets) {
      try {
        await endpoints.regenerate(ep.id);
      } catch (err) {
        if (err instanceof EndpointNotFoundError) continue;
        this.owed.add(ep.identity);
        failed.push(`endpoint ${ep.id}: ${(err as Error).message}`);
      }
    }
    if (failed.length > 0) {
      this.pendingDelays.push(...delays);
      throw new Error(`policy: ${failed.length} of ${targets.length} endpoint regenerations failed: ${failed.join('; ')}`);
    }
    if (targets.length > 0) {
      const now = performance.now();
      for (const seen of delays) this.metrics?.policyImplementationDelay.observe({ source: 'k8s' }, (now - seen) / 1000);
      log.debug('endpoints regenerated', { endpoints: targets.map((e) => e.id), revision: this.repo.revision });
    }
  }

  private async syncIPCache(rows: readonly IPCacheEntry[]): Promise<void> {
    const serialized = JSON.stringify(rows);
    if (serialized === this.ipcacheSynced) return;
    await this.opts.ipcache?.(rows);
    this.ipcacheRows = rows;
    this.ipcacheSynced = serialized;
  }

  private updateGauges(): void {
    this.metrics?.policy.set(this.repo.rules().length);
    this.metrics?.policyMaxRevision.set(this.repo.revision);
  }

  /**
   * An endpoint's policy. An identity the repository has not seen yet (its CiliumIdentity is still
   * on the way) is learned from the endpoint, and the endpoints whose peers it joins are owed a
   * regeneration. A policy that cannot be resolved denies everything both ways: nothing opens
   * because of a failure.
   */
  private compute(ep: Readonly<EndpointRecord>): ComputedPolicy {
    let labels: LabelSet | undefined;
    try {
      labels = LabelSet.parse(ep.identityLabels);
      const policy = this.resolve(ep, labels);
      if (this.computeFailures.delete(ep.id)) this.publish();
      return policy;
    } catch (err) {
      const error = (err as Error).message;
      this.log.error('endpoint policy could not be resolved; denying everything', { endpoint: ep.id, identity: ep.identity, error });
      const before = this.computeFailures.get(ep.id);
      this.computeFailures.set(ep.id, { labels, error });
      if (before?.error !== error) this.publish();
      return { ...DENY_ALL, error };
    }
  }

  private resolve(ep: Readonly<EndpointRecord>, labels: LabelSet): ComputedPolicy {
    if (this.repo.selectorCache.labelsOf(ep.identity) === undefined) {
      this.identities.set(ep.identity, labels.key);
      const { affected } = this.repo.upsertIdentity(ep.identity, labels);
      affected.delete(ep.identity);
      if (affected.size > 0) {
        for (const id of affected) this.owed.add(id);
        this.controller.enqueue(SETTLE_KEY);
      }
    }
    const namedPorts = ep.namedPorts.map((p) => ({ name: p.name, port: p.port, protocol: PROTOCOL_NUMBERS[p.protocol] ?? IPPROTO_TCP }));
    const r = resolvePolicy(
      this.repo,
      { identity: ep.identity, labels, namedPorts },
      { mode: this.opts.mode, allowLocalhost: this.opts.allowLocalhost, clusterNamedPorts: this.opts.clusterNamedPorts?.() },
    );
    const note = r.unsupported.map((u) => `${policyRefKey(u.policy)} ${unsupportedMessage([u])}`).join('; ');
    if (note !== (this.endpointNotes.get(ep.id) ?? '')) {
      if (note === '') this.endpointNotes.delete(ep.id);
      else {
        this.endpointNotes.set(ep.id, note);
        this.log.warn('endpoint policy has parts that are not enforced', { endpoint: ep.id, pod: `${ep.namespace}/${ep.podName}`, revision: r.revision, unsupported: note });
      }
    }
    return { entries: r.entries, enforcement: r.enforcement };
  }
}
