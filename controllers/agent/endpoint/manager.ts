// The agent's endpoint manager: turns an EndpointChangeRequest for a pod into a datapath endpoint
// with an identity, a policy and a CiliumEndpoint, keeps it in step with the pod's and namespace's
// labels, and brings every endpoint back after an agent restart. What it talks to (apiserver
// caches, identity allocator, datapath, policy, CEP writer, IPAM, state directory) is injected.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { CiliumEndpoint } from '../../../crds/gen/index.js';
import type { Datapath, EndpointSpec, Enforcement, PolicyEntry } from '../../../datapath/types.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import { buildLabelFilter, type LabelFilter } from '../labels/filter.js';
import { LabelSet } from '../labels/labels.js';
import { podSecurityLabels } from '../labels/pod-labels.js';
import { agentMetrics } from '../metrics.js';
import { CiliumEndpointSync } from './cep-sync.js';
import { endpointCreateFields, parseEndpointChangeRequest, type EndpointCreateFields } from './change-request.js';
import { attachmentId, NAMED_PORT_PROTOCOLS, type EndpointRecord, type NamedPort } from './endpoint.js';
import { EndpointIdAllocator } from './id-allocator.js';
import type { EndpointIpam } from './ipam.js';
import type { RestoreProblem, RestoreResult } from './state-store.js';

export interface PodSource {
  get(namespace: string, name: string): Promise<V1Pod | undefined>;
}

export interface NamespaceSource {
  get(name: string): Promise<V1Namespace | undefined>;
}

export interface EndpointIdentities {
  /** The identity for a (filtered) security label set, reused or created. */
  allocate(labels: LabelSet): Promise<{ id: number }>;
  /** Drops this node's use of an identity; absent where references are implicit (CRD mode). */
  release?(id: number, labels: LabelSet): Promise<void>;
}

export type EndpointDatapath = Pick<Datapath, 'upsertEndpoint' | 'removeEndpoint' | 'syncPolicy' | 'pruneEndpoints'>;

export interface ComputedPolicy {
  entries: readonly PolicyEntry[];
  enforcement: Enforcement;
  /**
   * Set when the endpoint's policy could not be computed: `entries` and `enforcement` then deny
   * everything, they are still written (fail closed), and the endpoint is not ready.
   */
  error?: string;
}

export type EndpointSummary = Pick<EndpointRecord, 'id' | 'identity' | 'ipv4' | 'state'>;

/** The policy could not be computed; what was written denies everything. */
export class PolicyComputeError extends Error {}

export interface EndpointPolicySource {
  compute(ep: Readonly<EndpointRecord>): Promise<ComputedPolicy>;
}

/**
 * Writes CiliumEndpoints without touching another pod's: a StatefulSet pod re-created under the same
 * name (maybe on another node) owns the name next, and the old endpoint must leave its CEP alone.
 */
export interface CiliumEndpointWriter {
  /**
   * Creates or updates the object, unless a CiliumEndpoint of that name belongs to another pod
   * (its Pod owner uid differs from `cep`'s): then resolves false and leaves it. Rejects (to be
   * retried) when the object changed under it.
   */
  apply(cep: CiliumEndpoint): Promise<boolean>;
  /** Deletes the CiliumEndpoint of that name if it belongs to pod `podUid`; a missing one or another pod's is left. */
  delete(namespace: string, name: string, podUid: string | undefined): Promise<void>;
}

export interface EndpointStore {
  save(ep: EndpointRecord): Promise<void>;
  remove(id: number): Promise<void>;
  restore(): Promise<RestoreResult>;
}

export interface EndpointManagerOptions {
  pods: PodSource;
  namespaces: NamespaceSource;
  identities: EndpointIdentities;
  datapath: EndpointDatapath;
  policy: EndpointPolicySource;
  ceps: CiliumEndpointWriter;
  store: EndpointStore;
  ipam: EndpointIpam;
  nodeName: string;
  /** io.cilium.k8s.policy.cluster; upstream's default is "default". */
  clusterName?: string;
  labelFilter?: LabelFilter;
  logger?: Logger;
  /** For the CiliumEndpoint sync controller's metrics. */
  registry?: Registry;
  /**
   * Called after the set of local endpoints, or an address or identity of one, changed (create,
   * delete, relabel, restore); e.g. for the ipcache loop to refresh its local rows.
   */
  onChange?: () => void;
}

/** An endpoint for the same attachment, address or id exists (HTTP 409 on the REST API). */
export class EndpointConflictError extends Error {
  override name = 'EndpointConflictError';
}

/** No endpoint matches (HTTP 404 on the REST API). */
export class EndpointNotFoundError extends Error {
  override name = 'EndpointNotFoundError';
}

export interface RestoreReport {
  restored: number[];
  /** Datapath endpoints no restored state named, removed. */
  pruned: number[];
  problems: RestoreProblem[];
}

/** One operation at a time per key; later callers wait for earlier ones, failed or not. */
class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

const DEFAULT_CLUSTER_NAME = 'default';

function ipamOwner(ep: Pick<EndpointRecord, 'namespace' | 'podName'>): string {
  return `${ep.namespace}/${ep.podName}`;
}

function datapathSpec(ep: EndpointRecord): EndpointSpec {
  return { id: ep.id, ipv4: ep.ipv4, identity: ep.identity, ifname: ep.ifname, ifindex: ep.ifindex, mac: ep.mac, nodeMac: ep.hostMac };
}

/** The pod's named container ports, as upstream puts them on the endpoint (not the identity). */
export function podNamedPorts(pod: V1Pod): NamedPort[] {
  const out: NamedPort[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.name) continue;
      const protocol = (p.protocol ?? 'TCP').toUpperCase();
      if (!(NAMED_PORT_PROTOCOLS as readonly string[]).includes(protocol)) continue;
      out.push({ name: p.name, port: p.containerPort, protocol: protocol as NamedPort['protocol'] });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.port - b.port);
}

interface PodFacts {
  uid?: string;
  identityLabels: LabelSet;
  podLabels: Record<string, string>;
  serviceAccount?: string;
  namedPorts: NamedPort[];
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class EndpointManager {
  private readonly endpoints = new Map<number, EndpointRecord>();
  private readonly ids = new EndpointIdAllocator();
  private readonly serial = new KeyedSerializer();
  /** Attachments and addresses of creates in flight. */
  private readonly creating = new Set<string>();
  /** Creates in flight by endpoint id, so a delete can wait for the endpoint it names to exist. */
  private readonly inflight = new Map<number, { containerId: string; done: Promise<unknown> }>();
  /** State file writes of new endpoints, still running (saveLater). */
  private readonly saving = new Set<Promise<void>>();
  private readonly cepSync: CiliumEndpointSync;
  private readonly filter: LabelFilter;
  private readonly clusterName: string;
  private readonly log: Logger;
  private restored = false;

  constructor(private readonly deps: EndpointManagerOptions) {
    this.filter = deps.labelFilter ?? buildLabelFilter().filter;
    this.clusterName = deps.clusterName ?? DEFAULT_CLUSTER_NAME;
    this.log = deps.logger ?? newLogger('endpoint-manager');
    this.cepSync = new CiliumEndpointSync({
      writer: deps.ceps,
      // An endpoint being created has no CEP until the create succeeds (a rollback would leak it).
      endpoint: (id) => (this.inflight.has(id) ? undefined : this.get(id)),
      nodeName: deps.nodeName,
      logger: this.log,
      ...(deps.registry ? { registry: deps.registry } : {}),
    });
  }

  /** Runs the CiliumEndpoint sync until `signal` aborts; until then CEP writes wait in its queue. */
  start(signal: AbortSignal): Promise<void> {
    return this.cepSync.start(signal);
  }

  list(): EndpointRecord[] {
    return [...this.endpoints.values()].sort((a, b) => a.id - b.id).map((ep) => structuredClone(ep));
  }

  /**
   * Id, identity, address and state of every endpoint, by id: what the loops that run on every
   * change need, without copying whole records (list() deep-copies each one).
   */
  summaries(): EndpointSummary[] {
    return [...this.endpoints.values()].sort((a, b) => a.id - b.id).map((ep) => ({ id: ep.id, identity: ep.identity, ipv4: ep.ipv4, state: ep.state }));
  }

  /**
   * An id for an endpoint the agent makes itself (the health endpoint): no pod gets it. Call it
   * after restore(), which takes back the restored endpoints' ids first.
   */
  reserveId(): number {
    return this.ids.allocate();
  }

  get(id: number): EndpointRecord | undefined {
    const ep = this.endpoints.get(id);
    return ep === undefined ? undefined : structuredClone(ep);
  }

  /**
   * Creates a pod's endpoint from an EndpointChangeRequest body: validate, look up Pod and
   * Namespace, derive the security labels, get an identity, create the datapath endpoint, sync
   * its first policy; then (after it resolved) persist it and write its CiliumEndpoint. A failure
   * undoes every step taken (endpoint id, address allocated here, identity use, datapath
   * endpoint) and throws with the cause; a bad request throws InvalidEndpointRequestError naming
   * the field.
   */
  async create(body: unknown): Promise<EndpointRecord> {
    const req = parseEndpointChangeRequest(body);
    const f = endpointCreateFields(req);
    const attach = attachmentId(f);
    // Checked and reserved before the first await, so two creates cannot both pass.
    const conflict = [...this.endpoints.values()].find((e) => attachmentId(e) === attach || (f.ipv4 !== undefined && e.ipv4 === f.ipv4));
    if (conflict !== undefined) {
      throw new EndpointConflictError(`endpoint for ${attach}: endpoint ${conflict.id} (${attachmentId(conflict)}, ${conflict.ipv4}) already exists`);
    }
    const keys = [`attachment:${attach}`, ...(f.ipv4 === undefined ? [] : [`ipv4:${f.ipv4}`])];
    const busy = keys.find((k) => this.creating.has(k));
    if (busy !== undefined) throw new EndpointConflictError(`endpoint for ${attach}: ${busy} is being created by another request`);
    let id: number;
    try {
      id = f.id === 0 ? this.ids.allocate() : (this.ids.reuse(f.id), f.id);
    } catch (err) {
      throw new EndpointConflictError(`endpoint for ${attach}: ${describe(err)}`, { cause: err });
    }
    for (const k of keys) this.creating.add(k);
    const work = this.serial.run(`endpoint:${id}`, () => this.createWithId(id, f, req['container-name'], req['container-netns-path'], req['netns-cookie']));
    this.inflight.set(id, { containerId: f.containerId, done: work.catch(() => undefined) });
    let ep: EndpointRecord;
    try {
      ep = await work;
    } finally {
      for (const k of keys) this.creating.delete(k);
      this.inflight.delete(id);
    }
    this.cepSync.enqueue(id);
    this.deps.onChange?.();
    return ep;
  }

  private async createWithId(id: number, f: EndpointCreateFields, containerName?: string, netnsPath?: string, netnsCookie?: string): Promise<EndpointRecord> {
    const undo: [string, () => unknown][] = [['release endpoint id', () => this.ids.release(id)]];
    let ep: EndpointRecord;
    try {
      const facts = await this.podFacts(f.namespace, f.podName);
      if ('missing' in facts) throw new Error(`${facts.missing}: not found`);
      if (f.podUid !== undefined && facts.uid !== undefined && facts.uid !== f.podUid) {
        throw new Error(`pod ${f.namespace}/${f.podName} has uid ${facts.uid}, not the request's k8s-uid ${f.podUid} (re-created?)`);
      }
      let ipv4 = f.ipv4;
      if (ipv4 === undefined) {
        const ip = this.deps.ipam.allocate(ipamOwner(f));
        undo.push([`release ${ip}`, () => this.deps.ipam.release(ip)]);
        ipv4 = ip;
      }
      ep = {
        id,
        containerId: f.containerId,
        containerInterfaceName: f.containerInterfaceName,
        ...(containerName ? { containerName } : {}),
        ...(netnsPath ? { netnsPath } : {}),
        ...(netnsCookie ? { netnsCookie } : {}),
        namespace: f.namespace,
        podName: f.podName,
        ...(facts.uid ? { podUid: facts.uid } : {}),
        ifname: f.ifname,
        ifindex: f.ifindex,
        mac: f.mac,
        hostMac: f.hostMac,
        ipv4,
        externalIpam: f.externalIpam,
        identity: 0,
        identityLabels: [...facts.identityLabels.strings],
        podLabels: facts.podLabels,
        ...(facts.serviceAccount ? { serviceAccount: facts.serviceAccount } : {}),
        namedPorts: facts.namedPorts,
        state: 'waiting-for-identity',
      };
      this.endpoints.set(id, ep);
      undo.push(['forget endpoint', () => this.endpoints.delete(id)]);

      const identity = await this.deps.identities.allocate(facts.identityLabels);
      const release = this.deps.identities.release?.bind(this.deps.identities);
      if (release) undo.push([`release identity ${identity.id}`, () => release(identity.id, facts.identityLabels)]);
      ep.identity = identity.id;
      ep.state = 'regenerating';

      undo.push(['remove datapath endpoint', () => this.deps.datapath.removeEndpoint(id)]);
      await this.deps.datapath.upsertEndpoint(datapathSpec(ep));
      await this.syncPolicy(ep);
      ep.state = 'ready';
    } catch (err) {
      const failed = await this.attempt([...undo].reverse());
      const where = `create endpoint for pod ${f.namespace}/${f.podName} (${attachmentId(f)})`;
      throw new Error(`${where}: ${describe(err)}${failed.length > 0 ? `; rollback failed: ${failed.join('; ')}` : ''}`, { cause: err });
    }
    this.log.info('endpoint created', { endpoint: id, pod: ipamOwner(ep), identity: ep.identity, ipv4: ep.ipv4 });
    this.saveLater(ep);
    return structuredClone(ep);
  }

  /**
   * Writes the state file of a new endpoint after the create has answered: the answer waits for
   * the datapath to enforce the endpoint's policy (upstream's sync build), not for a file that
   * matters only to a restart. Queued on the endpoint's key, so a delete of it runs after and
   * removes the file; a failure is logged (the next change of the endpoint writes it again).
   */
  private saveLater(ep: EndpointRecord): void {
    const write = this.serial.run(`endpoint:${ep.id}`, async () => {
      if (this.endpoints.get(ep.id) !== ep) return;
      try {
        await this.deps.store.save(ep);
      } catch (err) {
        this.log.error('endpoint state not saved: a restart would not restore this endpoint', { endpoint: ep.id, pod: ipamOwner(ep), error: describe(err) });
      }
    });
    this.saving.add(write);
    void write.finally(() => this.saving.delete(write));
  }

  /** Resolves once the state files of the endpoints created so far are written (or failed). */
  async stateSaved(): Promise<void> {
    await Promise.all([...this.saving]);
  }

  /** Runs every step in order, each whether or not an earlier one failed; returns the failures, described. */
  private async attempt(steps: [string, () => unknown][]): Promise<string[]> {
    const failed: string[] = [];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        failed.push(`${what}: ${describe(err)}`);
      }
    }
    return failed;
  }

  /**
   * Deletes an endpoint by id, or every endpoint of a container id (upstream's `DELETE /endpoint`
   * with a container-id). A create of that id or container still in flight is waited for first, so
   * a CNI DEL racing its ADD does not leak the endpoint. Each step is tried even when an earlier one
   * failed; the endpoint is forgotten either way (a datapath leftover is pruned at the next restart)
   * and the failures are thrown together at the end. Its CiliumEndpoint is deleted by the CEP sync.
   */
  async delete(ref: number | string): Promise<EndpointRecord[]> {
    const creating = [...this.inflight].filter(([id, c]) => (typeof ref === 'number' ? id === ref : c.containerId === ref));
    await Promise.all(creating.map(([, c]) => c.done));
    const targets = [...this.endpoints.values()].filter((e) => (typeof ref === 'number' ? e.id === ref : e.containerId === ref));
    if (targets.length === 0) throw new EndpointNotFoundError(`endpoint ${typeof ref === 'number' ? ref : `with container-id ${ref}`}: not found`);
    const deleted: EndpointRecord[] = [];
    const problems: string[] = [];
    for (const target of targets) {
      await this.serial.run(`endpoint:${target.id}`, async () => {
        const ep = this.endpoints.get(target.id);
        if (ep !== target) return;
        ep.state = 'disconnecting';
        const steps: [string, () => unknown][] = [
          ['remove datapath endpoint', () => this.deps.datapath.removeEndpoint(ep.id)],
          ['remove state file', () => this.deps.store.remove(ep.id)],
        ];
        if (!ep.externalIpam) steps.push([`release ${ep.ipv4}`, () => this.deps.ipam.release(ep.ipv4)]);
        const release = this.deps.identities.release?.bind(this.deps.identities);
        if (release) steps.push([`release identity ${ep.identity}`, () => release(ep.identity, LabelSet.parse(ep.identityLabels))]);
        const failed = await this.attempt(steps);
        this.endpoints.delete(ep.id);
        this.cepSync.enqueue(ep.id);
        this.deps.onChange?.();
        this.ids.release(ep.id);
        ep.state = 'disconnected';
        deleted.push(structuredClone(ep));
        this.log.info('endpoint deleted', { endpoint: ep.id, pod: ipamOwner(ep) });
        problems.push(...failed.map((p) => `endpoint ${ep.id}: ${p}`));
      });
    }
    if (problems.length > 0) throw new Error(`delete ${typeof ref === 'number' ? `endpoint ${ref}` : `container ${ref}`}: ${problems.join('; ')}`);
    return deleted;
  }

  /**
   * Re-derives the security labels of a pod's endpoints from the Pod and its Namespace; an endpoint
   * whose labels changed moves to the identity of its new labels (datapath entry, policy, state,
   * CiliumEndpoint). An allocation failure, or a datapath entry that cannot take the new identity,
   * leaves the endpoint on its old identity (not-ready only if its old datapath entry cannot be put
   * back either); a policy that cannot be synced for the new identity leaves it closed (not-ready).
   * Either failure throws.
   */
  async updateLabels(namespace: string, podName: string): Promise<EndpointRecord[]> {
    const targets = [...this.endpoints.values()].filter((e) => e.namespace === namespace && e.podName === podName);
    const out: EndpointRecord[] = [];
    for (const t of targets) {
      const ep = await this.serial.run(`endpoint:${t.id}`, () => this.relabel(t.id));
      if (ep !== undefined) out.push(ep);
    }
    return out;
  }

  /** updateLabels for every pod of `namespace` that has an endpoint (its labels changed). */
  async updateNamespace(namespace: string): Promise<EndpointRecord[]> {
    const pods = new Set([...this.endpoints.values()].filter((e) => e.namespace === namespace).map((e) => e.podName));
    const out: EndpointRecord[] = [];
    for (const pod of [...pods].sort()) out.push(...(await this.updateLabels(namespace, pod)));
    return out;
  }

  private async relabel(id: number): Promise<EndpointRecord | undefined> {
    const ep = this.endpoints.get(id);
    if (ep === undefined) return undefined;
    const facts = await this.podFacts(ep.namespace, ep.podName);
    if ('missing' in facts || (ep.podUid !== undefined && facts.uid !== undefined && facts.uid !== ep.podUid)) {
      // The pod is gone (its CNI DEL removes the endpoint) or a new pod took its name (its own
      // CNI ADD creates its endpoint): nothing to relabel.
      return structuredClone(ep);
    }
    const before = JSON.stringify(ep);
    const oldLabels = LabelSet.parse(ep.identityLabels);
    ep.podLabels = facts.podLabels;
    ep.namedPorts = facts.namedPorts;
    if (facts.serviceAccount) ep.serviceAccount = facts.serviceAccount;
    else delete ep.serviceAccount;
    if (!facts.identityLabels.equals(oldLabels)) {
      const oldIdentity = ep.identity;
      const next = await this.deps.identities.allocate(facts.identityLabels);
      const moveFailed = (err: unknown) => new Error(`endpoint ${id} (pod ${ipamOwner(ep)}): move to identity ${next.id}: ${describe(err)}`, { cause: err });
      try {
        await this.deps.datapath.upsertEndpoint(datapathSpec({ ...ep, identity: next.id }));
      } catch (err) {
        const restore = await this.attempt([['restore datapath endpoint', () => this.deps.datapath.upsertEndpoint(datapathSpec(ep))]]);
        if (restore.length > 0) {
          // The entry may hold either identity now, with the old identity's policy: closed until regenerated.
          ep.state = 'not-ready';
          delete ep.enforcement;
        }
        const release = next.id === oldIdentity ? [] : await this.attempt([[`release identity ${next.id}`, () => this.deps.identities.release?.(next.id, facts.identityLabels)]]);
        for (const f of [...restore, ...release]) this.log.warn('identity move rollback failed', { endpoint: id, error: f });
        await this.persist(ep);
        throw moveFailed(err);
      }
      // The datapath entry carries the new identity now: so does the record, whatever comes next.
      ep.identity = next.id;
      ep.identityLabels = [...facts.identityLabels.strings];
      ep.state = 'regenerating';
      this.log.info('endpoint identity changed', { endpoint: id, pod: ipamOwner(ep), from: oldIdentity, to: next.id });
      if (oldIdentity !== next.id) {
        const failed = await this.attempt([[`release identity ${oldIdentity}`, () => this.deps.identities.release?.(oldIdentity, oldLabels)]]);
        for (const f of failed) this.log.warn('identity release failed', { endpoint: id, error: f });
      }
      this.deps.onChange?.();
      try {
        await this.syncPolicyAndState(ep);
      } catch (err) {
        await this.persist(ep);
        throw moveFailed(err);
      }
    }
    if (JSON.stringify(ep) !== before) await this.persist(ep);
    return structuredClone(ep);
  }

  /** Recomputes and syncs an endpoint's policy (for the policy loop, when rules or selections change). */
  async regenerate(id: number): Promise<EndpointRecord> {
    return this.serial.run(`endpoint:${id}`, async () => {
      const ep = this.endpoints.get(id);
      if (ep === undefined) throw new EndpointNotFoundError(`endpoint ${id}: not found`);
      const before = JSON.stringify(ep);
      try {
        await this.syncPolicyAndState(ep);
      } catch (err) {
        throw new Error(`endpoint ${id}: regenerate: ${describe(err)}`, { cause: err });
      } finally {
        if (JSON.stringify(ep) !== before) await this.persist(ep);
      }
      return structuredClone(ep);
    });
  }

  /**
   * Brings back the endpoints of the state directory after a restart: each takes its id and
   * address back, re-confirms its identity and is upserted with its policy synced again (when
   * nothing changed the datapath writes nothing). Endpoints that cannot be restored are dropped
   * with their state and reported. Finally the datapath endpoints no restored state names are
   * pruned. Must run before anything else touches the manager.
   */
  async restore(): Promise<RestoreReport> {
    if (this.restored || this.endpoints.size > 0) throw new Error('endpoint restore: must run once, before any endpoint is created');
    this.restored = true;
    const { endpoints, problems } = await this.deps.store.restore();
    const report: RestoreReport = { restored: [], pruned: [], problems: [...problems] };
    for (const ep of endpoints) {
      const before = JSON.stringify(ep);
      const undo: [string, () => unknown][] = [];
      try {
        const clash = [...this.endpoints.values()].find((e) => e.ipv4 === ep.ipv4);
        if (clash !== undefined) throw new Error(`address ${ep.ipv4} is also endpoint ${clash.id}'s`);
        this.ids.reuse(ep.id);
        undo.push(['release endpoint id', () => this.ids.release(ep.id)]);
        if (!ep.externalIpam) {
          this.deps.ipam.claim(ep.ipv4, ipamOwner(ep));
          undo.push([`release ${ep.ipv4}`, () => this.deps.ipam.release(ep.ipv4)]);
        }
        this.endpoints.set(ep.id, ep);
        undo.push(['forget endpoint', () => this.endpoints.delete(ep.id)]);
        ep.state = 'restoring';
        const identity = await this.deps.identities.allocate(LabelSet.parse(ep.identityLabels));
        ep.identity = identity.id;
        await this.deps.datapath.upsertEndpoint(datapathSpec(ep));
        ep.state = 'ready';
        try {
          await this.syncPolicy(ep);
        } catch (err) {
          // The pod keeps running: denying all (already written) until its policy computes again
          // beats dropping the endpoint.
          if (!(err instanceof PolicyComputeError)) throw err;
          ep.state = 'not-ready';
          this.log.error('restored endpoint denies all traffic until its policy computes', { endpoint: ep.id, error: err.message });
        }
        if (JSON.stringify(ep) !== before) await this.deps.store.save(ep);
        report.restored.push(ep.id);
      } catch (err) {
        const failed = await this.attempt([...undo].reverse());
        report.problems.push({ file: `endpoint ${ep.id}`, reason: `${describe(err)}${failed.length > 0 ? `; rollback failed: ${failed.join('; ')}` : ''}` });
        try {
          await this.deps.store.remove(ep.id);
        } catch (rmErr) {
          report.problems.push({ file: `endpoint ${ep.id}`, reason: `remove state: ${describe(rmErr)}` });
        }
      }
    }
    report.pruned = await this.deps.datapath.pruneEndpoints(report.restored);
    for (const id of report.restored) this.cepSync.enqueue(id);
    this.deps.onChange?.();
    for (const p of report.problems) this.log.warn('endpoint not restored', { ...p });
    this.log.info('endpoints restored', { restored: report.restored.length, pruned: report.pruned, problems: report.problems.length });
    return report;
  }

  /** What the endpoint takes from its Pod and Namespace, or which of them does not exist. */
  private async podFacts(namespace: string, podName: string): Promise<PodFacts | { missing: string }> {
    const pod = await this.deps.pods.get(namespace, podName);
    if (pod === undefined) return { missing: `pod ${namespace}/${podName}` };
    const ns = await this.deps.namespaces.get(namespace);
    if (ns === undefined) return { missing: `namespace ${namespace}` };
    const podLabels = { ...(pod.metadata?.labels ?? {}) };
    const serviceAccount = pod.spec?.serviceAccountName || undefined;
    const { identity } = podSecurityLabels(
      { podLabels, namespace, namespaceLabels: ns.metadata?.labels ?? {}, serviceAccount, clusterName: this.clusterName },
      this.filter,
    );
    return { uid: pod.metadata?.uid, identityLabels: identity, podLabels, serviceAccount, namedPorts: podNamedPorts(pod) };
  }

  /** One regeneration (create, restore, relabel or a policy change), counted by outcome. */
  private async syncPolicy(ep: EndpointRecord): Promise<void> {
    const counter = this.deps.registry ? agentMetrics(this.deps.registry).endpointRegenerations : undefined;
    try {
      const policy = await this.deps.policy.compute(structuredClone(ep));
      await this.deps.datapath.syncPolicy(ep.id, policy.entries, policy.enforcement);
      ep.enforcement = { ...policy.enforcement };
      if (policy.error !== undefined) throw new PolicyComputeError(`policy could not be computed, all traffic denied: ${policy.error}`);
    } catch (err) {
      counter?.inc({ outcome: 'fail' });
      throw err;
    }
    counter?.inc({ outcome: 'success' });
  }

  /** Syncs the endpoint's policy and sets its state from the outcome; a failure is rethrown. */
  private async syncPolicyAndState(ep: EndpointRecord): Promise<void> {
    try {
      await this.syncPolicy(ep);
      ep.state = 'ready';
    } catch (err) {
      ep.state = 'not-ready';
      // A compute failure was written as deny-all: that is what the endpoint enforces.
      if (!(err instanceof PolicyComputeError)) delete ep.enforcement;
      throw err;
    }
  }

  private async persist(ep: EndpointRecord): Promise<void> {
    this.cepSync.enqueue(ep.id);
    await this.deps.store.save(ep);
  }
}
