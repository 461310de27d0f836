// Identity allocation in CRD mode (`--identity-allocation-mode=crd`): a label set's identity is
// the CiliumIdentity whose security-labels equal it; an agent reuses one that exists and creates
// one otherwise.
//
// Converging when agents race. Upstream picks a random free id, so two agents that see the same
// new label set at once (pods of one Deployment starting on two nodes) can create two identities
// for it and live with the duplicate until GC. We avoid the duplicate instead: every agent tries
// the same pseudo-random candidate ids for a label set, in the same order (identityCandidates).
// Both racers then ask the apiserver to create the same name; exactly one create succeeds, the
// other gets AlreadyExists, reads the object, finds its own labels and adopts it. A candidate
// held by other labels is skipped by both in the same way, so they stay in step. We rejected
// "create, then list and settle on the lowest id": an agent that listed before the other's
// create keeps its id while the other, seeing both, keeps the lower one, so two survive.
// What remains: an identity deleted by GC between two agents' probes of the same candidate can
// let one agent skip it and the other take it; both ids then work (policy selects by labels)
// until one goes unused and GC collects it, as upstream's duplicates do.
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { CiliumIdentity } from '../../../crds/gen/index.js';
import { validateCiliumIdentity } from '../../../crds/validation.js';
import type { LabelSet } from '../labels/labels.js';
import {
  CILIUM_IDENTITY_GROUP,
  CILIUM_IDENTITY_PLURAL,
  CILIUM_IDENTITY_VERSION,
  ciliumIdentityFor,
  HEARTBEAT_ANNOTATION,
  identityId,
  identityLabels,
} from './cilium-identity.js';
import { globalIdentityRange, identityCandidates, type IdentityRange } from './numeric.js';

/** Upstream's bound on create attempts per allocation. */
export const MAX_ALLOCATION_ATTEMPTS = 16;

export interface AllocatedIdentity {
  id: number;
  /** True when this call created the CiliumIdentity. */
  created: boolean;
  identity: CiliumIdentity;
}

export interface CrdAllocatorOptions {
  clusterId?: number;
  /**
   * Finds the identity for a label set's canonical key in a store kept by someone else (the
   * agent's CiliumIdentity informer). Without it the allocator lists all identities once, on its
   * first allocation.
   */
  lookup?: (labelKey: string) => CiliumIdentity | undefined;
}

function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** How often one call is repeated while the apiserver answers 429 (e.g. a new CRD's cache warming up). */
const MAX_THROTTLED_TRIES = 10;
const MAX_RETRY_AFTER_MS = 5_000;

/** Runs `call`, waiting out 429 answers for the time the apiserver's Retry-After asks. */
async function unthrottled<T>(call: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await call();
    } catch (err) {
      if (httpStatus(err) !== 429 || tries >= MAX_THROTTLED_TRIES) throw err;
      const seconds = Number((err as { headers?: Record<string, string> }).headers?.['retry-after']);
      await sleep(Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : 1000);
    }
  }
}

function checked(obj: unknown, what: string): CiliumIdentity {
  const r = validateCiliumIdentity(obj);
  if (!r.ok) throw new Error(`${what}: invalid CiliumIdentity from the apiserver: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return r.value;
}

const api = { group: CILIUM_IDENTITY_GROUP, version: CILIUM_IDENTITY_VERSION, plural: CILIUM_IDENTITY_PLURAL };

export class CrdIdentityAllocator {
  readonly range: IdentityRange;
  private readonly client: CustomObjectsApi;
  private readonly lookup?: (labelKey: string) => CiliumIdentity | undefined;
  /** Identities this allocator has created, adopted or listed, by label key. */
  private readonly index = new Map<string, CiliumIdentity>();
  private listed?: Promise<void>;
  /** One allocation per label set at a time within this process. */
  private readonly inFlight = new Map<string, Promise<AllocatedIdentity>>();

  constructor(kubeConfig: KubeConfig, opts: CrdAllocatorOptions = {}) {
    this.range = globalIdentityRange(opts.clusterId ?? 0);
    this.client = kubeConfig.makeApiClient(CustomObjectsApi);
    this.lookup = opts.lookup;
  }

  /** The identity for `labels` (already filtered: see podSecurityLabels), reused or created. */
  allocate(labels: LabelSet): Promise<AllocatedIdentity> {
    if (labels.size === 0) return Promise.reject(new Error('identity allocation: empty label set'));
    let p = this.inFlight.get(labels.key);
    if (p === undefined) {
      p = this.allocateOnce(labels).finally(() => this.inFlight.delete(labels.key));
      this.inFlight.set(labels.key, p);
    }
    return p;
  }

  private async allocateOnce(labels: LabelSet): Promise<AllocatedIdentity> {
    const known = await this.known(labels);
    if (known !== undefined) {
      const reused = await this.reuse(known, labels);
      if (reused !== undefined) return { id: identityId(reused) ?? 0, created: false, identity: reused };
    }
    return this.create(labels);
  }

  private async known(labels: LabelSet): Promise<CiliumIdentity | undefined> {
    const hit = this.lookup?.(labels.key) ?? this.index.get(labels.key);
    if (hit !== undefined || this.lookup !== undefined) return hit;
    this.listed ??= this.listAll().catch((err: unknown) => {
      this.listed = undefined;
      throw err;
    });
    await this.listed;
    return this.index.get(labels.key);
  }

  private async listAll(): Promise<void> {
    const list = (await unthrottled(() => this.client.listClusterCustomObject(api))) as { items?: unknown[] };
    for (const item of list.items ?? []) this.remember(checked(item, 'list ciliumidentities'));
  }

  private remember(ci: CiliumIdentity): void {
    if (identityId(ci) !== undefined) this.index.set(identityLabels(ci).key, ci);
  }

  /**
   * Takes `ci` for `labels`, first clearing a GC mark. The resourceVersion precondition makes the
   * operator's delete (which carries the version it marked) fail once we have cleared it, and
   * makes our clear fail if the object changed; then we read it again. Undefined when it is gone
   * or no longer holds these labels.
   */
  private async reuse(ci: CiliumIdentity, labels: LabelSet): Promise<CiliumIdentity | undefined> {
    let current: CiliumIdentity | undefined = ci;
    for (;;) {
      if (current === undefined || !identityLabels(current).equals(labels)) {
        this.index.delete(labels.key);
        return undefined;
      }
      if (current.metadata.annotations?.[HEARTBEAT_ANNOTATION] === undefined) {
        this.remember(current);
        return current;
      }
      const name = current.metadata.name ?? '';
      try {
        const body = [
          { op: 'replace', path: '/metadata/resourceVersion', value: current.metadata.resourceVersion },
          { op: 'remove', path: `/metadata/annotations/${HEARTBEAT_ANNOTATION.replaceAll('~', '~0').replaceAll('/', '~1')}` },
        ];
        const patched: unknown = await unthrottled(() => this.client.patchClusterCustomObject({ ...api, name, body }));
        current = checked(patched, `ciliumidentity ${name}: clear ${HEARTBEAT_ANNOTATION}`);
      } catch (err) {
        const status = httpStatus(err);
        if (status !== 409 && status !== 404 && status !== 422) {
          throw new Error(`ciliumidentity ${name}: clear ${HEARTBEAT_ANNOTATION}: ${(err as Error).message}`, { cause: err });
        }
        current = await this.get(name);
      }
    }
  }

  private async get(name: string): Promise<CiliumIdentity | undefined> {
    try {
      return checked(await unthrottled(() => this.client.getClusterCustomObject({ ...api, name })), `ciliumidentity ${name}`);
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw new Error(`ciliumidentity ${name}: get: ${(err as Error).message}`, { cause: err });
    }
  }

  private async create(labels: LabelSet): Promise<AllocatedIdentity> {
    let attempts = 0;
    for (const id of identityCandidates(labels, this.range)) {
      // A candidate that vanishes between our failed create and our read is tried again.
      for (let again = true; again && attempts < MAX_ALLOCATION_ATTEMPTS; attempts++) {
        again = false;
        const body = ciliumIdentityFor(id, labels);
        try {
          const created = checked(await unthrottled(() => this.client.createClusterCustomObject({ ...api, body })), `ciliumidentity ${id}`);
          this.remember(created);
          return { id, created: true, identity: created };
        } catch (err) {
          if (httpStatus(err) !== 409) throw new Error(`ciliumidentity ${id}: create for ${labels.key}: ${(err as Error).message}`, { cause: err });
        }
        const holder = await this.get(String(id));
        if (holder === undefined) {
          again = true;
          continue;
        }
        this.remember(holder);
        const adopted = await this.reuse(holder, labels);
        if (adopted !== undefined) return { id, created: false, identity: adopted };
      }
      if (attempts >= MAX_ALLOCATION_ATTEMPTS) break;
    }
    throw new Error(
      `identity allocation for ${labels.key}: no free id in ${this.range.min}..${this.range.max} after ${MAX_ALLOCATION_ATTEMPTS} attempts`,
    );
  }
}
