// Fakes for the endpoint manager's unit tests. The datapath fake keeps only the behaviour the
// manager relies on from datapath/types.ts: endpoints by id, policy only for an upserted endpoint,
// diffed writes (an identical upsert or sync writes nothing), prune of unnamed ids.
import { isDeepStrictEqual } from 'node:util';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import winston from 'winston';
import type { CiliumEndpoint } from '../../../crds/gen/index.js';
import type { EndpointSpec, Enforcement, PolicyEntry, SyncResult } from '../../../datapath/types.js';
import type { Logger } from '../../runtime/log.js';
import type { LabelSet } from '../labels/labels.js';
import { cepPodUid } from './cep.js';
import type { EndpointRecord } from './endpoint.js';
import type { CiliumEndpointWriter, ComputedPolicy, EndpointDatapath, EndpointIdentities, EndpointPolicySource } from './manager.js';

type Method = 'upsertEndpoint' | 'removeEndpoint' | 'syncPolicy' | 'pruneEndpoints';

export class FakeDatapath implements EndpointDatapath {
  readonly endpoints = new Map<number, EndpointSpec>();
  readonly policies = new Map<number, { entries: PolicyEntry[]; enforcement: Enforcement }>();
  /** Map writes done: an endpoint entry set or removed, a policy entry added, changed or removed. */
  writes = 0;
  /** The next call of a method rejects with this error. */
  readonly failNext = new Map<Method, Error>();

  private fail(m: Method): void {
    const err = this.failNext.get(m);
    if (err !== undefined) {
      this.failNext.delete(m);
      throw err;
    }
  }

  upsertEndpoint(ep: EndpointSpec): Promise<void> {
    return Promise.resolve().then(() => {
      this.fail('upsertEndpoint');
      if (!isDeepStrictEqual(this.endpoints.get(ep.id), ep)) this.writes++;
      this.endpoints.set(ep.id, { ...ep });
    });
  }

  removeEndpoint(id: number): Promise<void> {
    return Promise.resolve().then(() => {
      this.fail('removeEndpoint');
      if (this.endpoints.delete(id)) this.writes++;
      this.writes += this.policies.get(id)?.entries.length ?? 0;
      this.policies.delete(id);
    });
  }

  syncPolicy(id: number, entries: readonly PolicyEntry[], enforcement: Enforcement): Promise<SyncResult> {
    return Promise.resolve().then(() => {
      this.fail('syncPolicy');
      if (!this.endpoints.has(id)) throw new Error(`endpoint ${id}: has no policy map; upsertEndpoint must come first`);
      const key = (e: PolicyEntry): string => JSON.stringify([e.identity, e.direction, e.protocol, e.port, e.endPort ?? e.port]);
      const old = new Map((this.policies.get(id)?.entries ?? []).map((e) => [key(e), e]));
      const next = new Map(entries.map((e) => [key(e), e]));
      const result = { added: 0, updated: 0, removed: 0 };
      for (const [k, e] of next) {
        if (!old.has(k)) result.added++;
        else if (!isDeepStrictEqual(old.get(k), e)) result.updated++;
      }
      for (const k of old.keys()) if (!next.has(k)) result.removed++;
      if (!isDeepStrictEqual(this.policies.get(id)?.enforcement, enforcement)) result.updated++;
      this.writes += result.added + result.updated + result.removed;
      this.policies.set(id, { entries: [...entries], enforcement: { ...enforcement } });
      return result;
    });
  }

  pruneEndpoints(keepIds: Iterable<number>): Promise<number[]> {
    return Promise.resolve().then(async () => {
      this.fail('pruneEndpoints');
      const keep = new Set(keepIds);
      const gone = [...new Set([...this.endpoints.keys(), ...this.policies.keys()])].filter((id) => !keep.has(id)).sort((a, b) => a - b);
      for (const id of gone) await this.removeEndpoint(id);
      return gone;
    });
  }
}

export class FakeIdentities implements EndpointIdentities {
  private readonly byKey = new Map<string, number>();
  private next = 1000;
  failNext?: Error;
  readonly released: number[] = [];

  allocate(labels: LabelSet): Promise<{ id: number }> {
    return Promise.resolve().then(() => {
      if (this.failNext !== undefined) {
        const err = this.failNext;
        this.failNext = undefined;
        throw err;
      }
      let id = this.byKey.get(labels.key);
      if (id === undefined) {
        id = this.next++;
        this.byKey.set(labels.key, id);
      }
      return { id };
    });
  }

  release(id: number): Promise<void> {
    this.released.push(id);
    return Promise.resolve();
  }
}

/** Allows ingress from identity 2 (world) to TCP 80, enforcing ingress only; or fails when told. */
export class FakePolicy implements EndpointPolicySource {
  failNext?: Error;
  /** While set, compute answers as the policy loop does for a policy it cannot compute. */
  computeError?: string;
  readonly computedFor: number[] = [];

  compute(ep: Readonly<EndpointRecord>): Promise<ComputedPolicy> {
    return Promise.resolve().then(() => {
      this.computedFor.push(ep.identity);
      if (this.failNext !== undefined) {
        const err = this.failNext;
        this.failNext = undefined;
        throw err;
      }
      if (this.computeError !== undefined) return { entries: [], enforcement: { ingress: true, egress: true }, error: this.computeError };
      return { entries: [{ identity: 2, direction: 'ingress', protocol: 6, port: 80, deny: false }], enforcement: { ingress: true, egress: false } };
    });
  }
}

/** CiliumEndpoints by namespace/name, kept to the writer's contract: another pod's object is left alone. */
export class FakeCeps implements CiliumEndpointWriter {
  readonly objects = new Map<string, CiliumEndpoint>();
  applies = 0;
  /** The next this many applies reject. */
  failApplies = 0;
  /** Applies refused because another pod owns the name. */
  refused = 0;

  apply(cep: CiliumEndpoint): Promise<boolean> {
    return Promise.resolve().then(() => {
      if (this.failApplies > 0) {
        this.failApplies--;
        throw new Error('apiserver unavailable');
      }
      const key = `${cep.metadata.namespace}/${cep.metadata.name}`;
      const existing = this.objects.get(key);
      if (existing !== undefined && cepPodUid(existing) !== cepPodUid(cep)) {
        this.refused++;
        return false;
      }
      this.applies++;
      this.objects.set(key, structuredClone(cep));
      return true;
    });
  }

  delete(namespace: string, name: string, podUid: string | undefined): Promise<void> {
    const key = `${namespace}/${name}`;
    const existing = this.objects.get(key);
    if (existing !== undefined && cepPodUid(existing) === podUid) this.objects.delete(key);
    return Promise.resolve();
  }
}

/** Pods and namespaces by name, as the agent's caches would hold them. */
export class FakeCluster {
  readonly pods = new Map<string, V1Pod>();
  readonly namespaces = new Map<string, V1Namespace>();

  readonly podSource = { get: (ns: string, name: string): Promise<V1Pod | undefined> => Promise.resolve(structuredClone(this.pods.get(`${ns}/${name}`))) };
  readonly namespaceSource = { get: (name: string): Promise<V1Namespace | undefined> => Promise.resolve(structuredClone(this.namespaces.get(name))) };

  addNamespace(name: string, labels: Record<string, string> = {}): void {
    this.namespaces.set(name, { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });
  }

  addPod(ns: string, name: string, labels: Record<string, string>, uid = `uid-${ns}-${name}`): V1Pod {
    const pod: V1Pod = {
      metadata: { namespace: ns, name, uid, labels },
      spec: { serviceAccountName: 'web-sa', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 9000 }] }] },
    };
    this.pods.set(`${ns}/${name}`, pod);
    return pod;
  }
}

/** A request as cilium-cni sends it for a pod (upstream field names). */
export function cniRequest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'container-id': 'c0ffee',
    'container-interface-name': 'eth0',
    'container-netns-path': '/var/run/cilium/netns/cni-1234',
    'interface-name': 'lxc0123456789ab',
    'interface-index': 42,
    mac: '02:00:00:00:00:02',
    'host-mac': '02:00:00:00:00:01',
    addressing: { ipv4: '10.0.1.20', 'ipv4-expiration-uuid': 'a-b-c' },
    'k8s-namespace': 'default',
    'k8s-pod-name': 'web-0',
    'k8s-uid': 'uid-default-web-0',
    'netns-cookie': '9007199254740993',
    state: 'waiting-for-identity',
    'sync-build-endpoint': true,
    labels: [],
    'datapath-configuration': {},
    properties: {},
    ...overrides,
  };
}

/** A saved endpoint as the manager would persist it. */
export function endpointRecord(id: number, overrides: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    id,
    containerId: `c${id}`,
    containerInterfaceName: 'eth0',
    namespace: 'default',
    podName: `web-${id}`,
    podUid: `uid-${id}`,
    ifname: `lxc${id}`,
    ifindex: 100 + id,
    mac: '02:00:00:00:00:02',
    hostMac: '02:00:00:00:00:01',
    ipv4: `10.0.1.${id}`,
    externalIpam: false,
    identity: 1000 + id,
    identityLabels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default'],
    podLabels: { app: 'web' },
    namedPorts: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    state: 'ready',
    enforcement: { ingress: true, egress: false },
    ...overrides,
  };
}

export function silentLogger(): Logger {
  return winston.createLogger({ silent: true });
}
