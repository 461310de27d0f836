// The policy loop against an in-memory API and recording endpoints: which endpoints a change
// regenerates, refused versions, identities joining peers, the order of ipcache rows and
// regenerations, and retries of failed regenerations.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { CiliumIdentity, CiliumNetworkPolicy } from '../../../crds/gen/index.js';
import type { IPCacheEntry } from '../../../datapath/types.js';
import { EventRecorder } from '../../runtime/events.js';
import { newLogger } from '../../runtime/log.js';
import { seriesValue } from '../../runtime/metrics.js';
import { pollUntil } from '../../../test/envtest/poll.js';
import type { EndpointRecord } from '../endpoint/endpoint.js';
import { PolicyComputeError, type ComputedPolicy, type EndpointPolicySource } from '../endpoint/manager.js';
import { endpointRecord } from '../endpoint/testing.js';
import { MemoryApi } from '../testing.js';
import type { NamedPort } from './index.js';
import { ciliumEndpointNamedPorts, PolicyLoop, REASON_POLICY_INVALID, type PolicyEndpoints } from './loop.js';
import { policyResourceList, policyResources } from './loop-resources.js';

const log = newLogger('policy-loop-unit', 'error');

/** Endpoints that regenerate by computing their policy; `failures` makes the next ones throw. */
class RecordingEndpoints implements PolicyEndpoints {
  readonly journal: string[] = [];
  readonly policies = new Map<number, ComputedPolicy>();
  failures = 0;
  source?: EndpointPolicySource;
  constructor(readonly records: EndpointRecord[]) {}

  summaries(): EndpointRecord[] {
    return this.records;
  }

  async regenerate(id: number): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      this.journal.push(`fail ${id}`);
      throw new Error('map write failed');
    }
    const ep = this.records.find((r) => r.id === id) as EndpointRecord;
    const policy = await (this.source as EndpointPolicySource).compute(ep);
    this.policies.set(id, policy);
    this.journal.push(`regenerate ${id}`);
    // As the endpoint manager: the deny-all is written, and the regeneration fails.
    if (policy.error !== undefined) throw new PolicyComputeError(policy.error);
  }
}

const NS = 'default';
const identity = (id: number, app: string, rv = '1'): CiliumIdentity => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumIdentity',
  metadata: { name: String(id), resourceVersion: rv },
  'security-labels': { 'k8s:app': app, 'k8s:io.kubernetes.pod.namespace': NS },
});
const labelsOf = (app: string) => [`k8s:app=${app}`, `k8s:io.kubernetes.pod.namespace=${NS}`];

function policy(rv: string, spec: CiliumNetworkPolicy['spec']): CiliumNetworkPolicy {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p', namespace: NS, uid: 'uid-p', resourceVersion: rv, generation: Number(rv) }, spec };
}
const webFromClient = (port: string, endPort?: number) =>
  policy(endPort === undefined ? '10' : '11', {
    endpointSelector: { matchLabels: { app: 'web' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port, protocol: 'TCP', ...(endPort === undefined ? {} : { endPort }) }] }] }],
  });

describe('PolicyLoop', () => {
  let api: MemoryApi;
  let endpoints: RecordingEndpoints;
  let loop: PolicyLoop;
  let registry: Registry;
  let ipcache: IPCacheEntry[][];
  let stop: AbortController;
  let running: Promise<void>;
  let stopResources: () => Promise<void>;
  let reports: (string | undefined)[];
  let namedPorts: NamedPort[];

  beforeEach(async () => {
    api = new MemoryApi({ ciliumidentities: [identity(1001, 'web'), identity(1002, 'db'), identity(1003, 'client')] });
    endpoints = new RecordingEndpoints([
      endpointRecord(1, { identity: 1001, identityLabels: labelsOf('web') }),
      endpointRecord(2, { identity: 1002, identityLabels: labelsOf('db') }),
    ]);
    registry = new Registry();
    ipcache = [];
    reports = [];
    namedPorts = [];
    const resources = policyResources({ client: api, logger: log });
    const events = new EventRecorder({ client: api, component: 'cilium-agent', logger: log });
    loop = new PolicyLoop({
      resources,
      events,
      registry,
      logger: log,
      onRealized: () => reports.push(loop.realized().get('uid-p')?.error),
      clusterNamedPorts: () => namedPorts,
      ipcache: (rows) => {
        ipcache.push([...rows]);
        endpoints.journal.push(`ipcache ${rows.map((r) => r.prefix).join(',')}`);
        return Promise.resolve();
      },
    });
    endpoints.source = loop.policySource();
    loop.bindEndpoints(endpoints);
    const all = policyResourceList(resources);
    for (const r of all) r.start();
    stopResources = async () => void (await Promise.all(all.map((r) => r.stop())));
    await Promise.all(all.map((r) => r.waitForSync()));
    await loop.prime();
    // The start writes the cidr source even when empty: it clears rows a previous run left.
    expect(endpoints.journal).to.deep.equal(['ipcache ']);
    endpoints.journal.length = 0;
    ipcache.length = 0;
    stop = new AbortController();
    running = loop.start(stop.signal);
  });
  afterEach(async () => {
    stop.abort();
    await running;
    await stopResources();
  });

  const settled = (what: string, check: () => boolean) => pollUntil(what, () => check() && loop.controller.queue.len() === 0, 3_000);
  const ingressOf = (id: number) => (endpoints.policies.get(id)?.entries ?? []).filter((e) => e.direction === 'ingress').map((e) => `${e.identity}/${e.protocol}/${e.port}`);

  it('recomputes only the endpoints a policy selects, and again when an identity joins its peers', async () => {
    await api.push('ciliumnetworkpolicies', 'ADDED', webFromClient('80'));
    await settled('web regenerated', () => endpoints.journal.includes('regenerate 1'));
    expect(endpoints.journal).to.deep.equal(['regenerate 1']);
    expect(ingressOf(1)).to.have.members(['1003/6/80', '1/0/0']);
    expect(endpoints.policies.get(1)?.enforcement).to.deep.equal({ ingress: true, egress: false });

    endpoints.journal.length = 0;
    await api.push('ciliumidentities', 'ADDED', identity(1004, 'client'));
    await settled('web regenerated for the new peer', () => endpoints.journal.includes('regenerate 1'));
    expect(endpoints.journal).to.deep.equal(['regenerate 1']);
    expect(ingressOf(1)).to.include('1004/6/80');

    endpoints.journal.length = 0;
    await api.push('ciliumidentities', 'DELETED', identity(1004, 'client'));
    await settled('web regenerated without the peer', () => endpoints.journal.includes('regenerate 1'));
    expect(ingressOf(1)).to.not.include('1004/6/80');
    expect(await seriesValue(registry, 'cilium_policy_implementation_delay', { source: 'k8s' }, 'cilium_policy_implementation_delay_count')).to.equal(1);
  });

  it('refuses an invalid version with a Warning naming the field and keeps the previous version', async () => {
    await api.push('ciliumnetworkpolicies', 'ADDED', webFromClient('80'));
    await settled('version 1 enforced', () => endpoints.journal.includes('regenerate 1'));
    endpoints.journal.length = 0;

    await api.push('ciliumnetworkpolicies', 'MODIFIED', webFromClient('8080', 70));
    await pollUntil('the Warning event', () => api.posted.length > 0, 3_000);
    expect(api.posted.map((e) => e.reason)).to.deep.equal([REASON_POLICY_INVALID]);
    expect(api.posted[0]?.message).to.match(/^CiliumNetworkPolicy default\/p refused, its previous version stays in force: spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.endPort: /);
    expect(endpoints.journal, 'nothing regenerated').to.deep.equal([]);
    const kept = loop.repo.get({ kind: 'CiliumNetworkPolicy', namespace: NS, name: 'p' });
    expect(kept?.rules[0]?.sections[0]?.ports).to.deep.equal([{ protocol: 6, port: 80 }]);
    expect(await seriesValue(registry, 'cilium_policy_change_total', { outcome: 'fail' })).to.equal(1);
  });

  it('puts CIDR identities into the ipcache before any endpoint uses them and removes them after', async () => {
    const cidr = policy('20', { endpointSelector: { matchLabels: { app: 'db' } }, egress: [{ toCIDR: ['192.0.2.0/24'] }] });
    await api.push('ciliumnetworkpolicies', 'ADDED', cidr);
    await settled('db regenerated', () => endpoints.journal.includes('regenerate 2'));
    expect(endpoints.journal).to.deep.equal(['ipcache 192.0.2.0/24', 'regenerate 2']);
    const cidrId = ipcache[0]?.[0]?.identity as number;
    expect((endpoints.policies.get(2)?.entries ?? []).some((e) => e.direction === 'egress' && e.identity === cidrId)).to.equal(true);

    endpoints.journal.length = 0;
    await api.push('ciliumnetworkpolicies', 'DELETED', cidr);
    await settled('db regenerated, rows gone', () => endpoints.journal.length === 2);
    expect(endpoints.journal).to.deep.equal(['regenerate 2', 'ipcache ']);
  });

  it('takes Kubernetes NetworkPolicies too', async () => {
    await api.push('networkpolicies', 'ADDED', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'knp', namespace: NS, uid: 'uid-knp', resourceVersion: '30' },
      spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 5432 }] }] },
    });
    await settled('db regenerated', () => endpoints.journal.includes('regenerate 2'));
    expect(endpoints.journal).to.deep.equal(['regenerate 2']);
    expect(ingressOf(2)).to.have.members(['1001/6/5432', '1/0/0']);
  });

  it('reports per policy uid the generation it took in, and why it is not (fully) enforced', async () => {
    await api.push('ciliumnetworkpolicies', 'ADDED', webFromClient('80'));
    await settled('version 10 realized', () => loop.realized().size === 1);
    expect([...loop.realized()]).to.deep.equal([['uid-p', { generation: 10 }]]);
    expect(reports).to.deep.equal([undefined]);

    await api.push('ciliumnetworkpolicies', 'MODIFIED', webFromClient('8080', 70));
    await settled('version 11 refused', () => loop.realized().get('uid-p')?.generation === 11);
    expect(loop.realized().get('uid-p')?.error).to.match(/^CiliumNetworkPolicy default\/p refused, its previous version stays in force: spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.endPort/);

    const l7 = policy('12', {
      endpointSelector: { matchLabels: { app: 'web' } },
      ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] }],
    });
    await api.push('ciliumnetworkpolicies', 'MODIFIED', l7);
    await settled('version 12 realized in part', () => loop.realized().get('uid-p')?.generation === 12);
    expect(loop.realized().get('uid-p')?.error).to.equal('not enforced (opens nothing): spec.ingress[0].toPorts[0].rules: L7 rules (HTTP/DNS/Kafka/TLS/listener) are not enforced; these ports are not opened');

    endpoints.failures = 1;
    await api.push('ciliumnetworkpolicies', 'MODIFIED', policy('13', { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{}] }));
    await settled('version 13 regenerated after a failure', () => endpoints.journal.filter((j) => j === 'regenerate 1').length >= 3);
    expect(reports.at(-2), 'the failure reported').to.match(/^policy: 1 of 1 endpoint regenerations failed/);
    expect([...loop.realized()], 'the retry clearing it').to.deep.equal([['uid-p', { generation: 13 }]]);

    await api.push('ciliumnetworkpolicies', 'DELETED', policy('13', {}));
    await settled('the report emptied', () => loop.realized().size === 0);
  });

  it('retries a failed regeneration until it succeeds', async () => {
    endpoints.failures = 1;
    await api.push('ciliumnetworkpolicies', 'ADDED', webFromClient('80'));
    await settled('web regenerated after a failure', () => endpoints.journal.includes('regenerate 1'));
    expect(endpoints.journal).to.deep.equal(['fail 1', 'regenerate 1']);
  });

  it('denies everything when a policy cannot be computed, and says so in the report until it can', async () => {
    await api.push('ciliumnetworkpolicies', 'ADDED', webFromClient('80'));
    await settled('version 10 realized', () => loop.realized().get('uid-p')?.generation === 10 && endpoints.journal.includes('regenerate 1'));
    const rulesSelecting = loop.repo.rulesSelecting.bind(loop.repo);
    loop.repo.rulesSelecting = () => {
      throw new Error('selector cache corrupt');
    };
    endpoints.journal.length = 0;
    await api.push('ciliumidentities', 'ADDED', identity(1004, 'client'));
    await settled('the failure reported', () => loop.realized().get('uid-p')?.error !== undefined);
    expect(endpoints.policies.get(1), 'fail closed').to.deep.equal({ entries: [], enforcement: { ingress: true, egress: true }, error: 'selector cache corrupt' });
    expect(loop.realized().get('uid-p')?.error).to.equal('endpoint 1: policy could not be computed, all its traffic is denied: selector cache corrupt');
    expect(endpoints.journal, 'the regeneration failed, and is retried').to.include('regenerate 1');

    loop.repo.rulesSelecting = rulesSelecting;
    await settled('the retry clearing it', () => loop.realized().get('uid-p')?.error === undefined);
    expect(ingressOf(1)).to.include('1004/6/80');
    expect([...loop.realized()]).to.deep.equal([['uid-p', { generation: 10 }]]);
  });

  it('forgets a failed endpoint once it is deleted', async () => {
    await api.push('ciliumnetworkpolicies', 'ADDED', webFromClient('80'));
    await settled('version 10 realized', () => loop.realized().get('uid-p')?.generation === 10 && endpoints.journal.includes('regenerate 1'));
    loop.repo.rulesSelecting = () => {
      throw new Error('selector cache corrupt');
    };
    await api.push('ciliumidentities', 'ADDED', identity(1004, 'client'));
    await settled('the failure reported', () => loop.realized().get('uid-p')?.error !== undefined);
    endpoints.records.splice(0, 1);
    loop.endpointsChanged();
    expect(loop.realized().get('uid-p')?.error, 'a deleted endpoint no longer counts').to.equal(undefined);
  });

  it('regenerates the endpoints whose egress names a port when the cluster named ports change', async () => {
    namedPorts = [{ name: 'http', port: 8080, protocol: 6 }];
    const egressOf = (id: number) => (endpoints.policies.get(id)?.entries ?? []).filter((e) => e.direction === 'egress').map((e) => `${e.identity}/${e.protocol}/${e.port}`);
    await api.push(
      'ciliumnetworkpolicies',
      'ADDED',
      policy('40', { endpointSelector: { matchLabels: { app: 'db' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'web' } }], toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }] }] }),
    );
    await settled('db regenerated', () => endpoints.journal.includes('regenerate 2'));
    expect(egressOf(2)).to.deep.equal(['1001/6/8080']);

    endpoints.journal.length = 0;
    namedPorts = [{ name: 'http', port: 9090, protocol: 6 }];
    loop.namedPortsChanged();
    await settled('db regenerated with the new port', () => endpoints.journal.includes('regenerate 2'));
    expect(egressOf(2), 'the old port closed').to.deep.equal(['1001/6/9090']);
    expect(endpoints.journal, 'only endpoints with egress named ports').to.deep.equal(['regenerate 2']);

    endpoints.journal.length = 0;
    loop.namedPortsChanged();
    await new Promise((r) => setTimeout(r, 100));
    await settled('queue empty', () => true);
    expect(endpoints.journal, 'unchanged named ports regenerate nothing').to.deep.equal([]);
  });

  it('takes the cluster named ports from CiliumEndpoints', () => {
    const cep = (ports: { name?: string; port?: number; protocol?: 'TCP' | 'UDP' | 'SCTP' | 'ANY' }[]) =>
      ({ metadata: { name: 'x', namespace: NS }, status: { 'named-ports': ports } }) as Parameters<typeof ciliumEndpointNamedPorts>[0][number];
    expect(ciliumEndpointNamedPorts([cep([{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }]), cep([{ name: 'any', port: 1, protocol: 'ANY' }, { name: 'tcp-default', port: 9 }])])).to.deep.equal([
      { name: 'http', port: 8080, protocol: 6 },
      { name: 'dns', port: 53, protocol: 17 },
      { name: 'tcp-default', port: 9, protocol: 6 },
    ]);
  });
});
