import { expect } from 'chai';
import type { ResourceHealth } from '../../runtime/resource.js';
import { ipamStatusLine, k8sApiVersions, statusResponse, type StatusFacts } from './status.js';

const watch = (name: string, over: Partial<ResourceHealth> = {}): ResourceHealth => ({ name, synced: true, connected: true, restarts: 0, relists: 0, heldInvalid: 0, ...over });

const facts = (over: Partial<StatusFacts> = {}): StatusFacts => ({
  version: 'cilium-ts 0.1.0',
  kubernetes: { ok: true, msg: '1.36 (v1.36.3) [linux/amd64]' },
  resources: [watch('pods'), watch('ciliumnetworkpolicies'), watch('ciliumnode-n1')],
  unsynced: [],
  stopping: false,
  ipam: { podCIDR: '10.0.0.0/24', capacity: 254, used: { '10.0.0.1': { owner: 'router' }, '10.0.0.3': { owner: 'ns/web' } } },
  identityRange: { min: 256, max: 65535 },
  cpus: 2,
  nodes: ['default/n1'],
  self: 'default/n1',
  brief: false,
  ...over,
});

describe('StatusResponse', () => {
  it('says Ok with the version, the IPAM line, the identity range and the disabled features', () => {
    const s = statusResponse(facts()) as Record<string, Record<string, unknown>>;
    expect(s.cilium).to.deep.equal({ state: 'Ok', msg: 'cilium-ts 0.1.0' });
    expect(s.ipam).to.deep.equal({ ipv4: ['10.0.0.1', '10.0.0.3'], allocations: { '10.0.0.1': 'router', '10.0.0.3': 'ns/web' }, status: 'IPv4: 2/254 allocated from 10.0.0.0/24, ' });
    expect(s['identity-range']).to.deep.equal({ 'min-identity': 256, 'max-identity': 65535 });
    expect(s.kubernetes).to.deep.include({ state: 'Ok', msg: '1.36 (v1.36.3) [linux/amd64]', 'k8s-api-versions': ['cilium/v2::CiliumNetworkPolicy', 'cilium/v2::CiliumNode', 'core/v1::Pods'] });
    for (const k of ['kvstore', 'hubble', 'container-runtime']) expect(s[k]?.state, k).to.equal('Disabled');
    expect(s.nodeMonitor).to.deep.include({ cpus: 2, npages: 1024, pagesize: 4096 });
    expect(s.controllers).to.have.length(3);
  });

  it('says Warning naming what is not synced, Failure while stopping, only cilium when brief', () => {
    const notReady = statusResponse(
      facts({
        kubernetes: { ok: false, msg: 'connect ECONNREFUSED 127.0.0.1:6443' },
        unsynced: ['pods', 'endpoint-restore'],
        resources: [watch('pods', { synced: false, connected: false, restarts: 2, lastError: 'connection refused' }), watch('namespaces', { connected: false, restarts: 1, lastError: 'HTTP 429' })],
      }),
    ) as Record<string, Record<string, unknown>>;
    expect(notReady.cilium).to.deep.equal({ state: 'Warning', msg: 'not ready: endpoint-restore, pods not synced' });
    expect(notReady.kubernetes).to.deep.include({ state: 'Failure', msg: 'connect ECONNREFUSED 127.0.0.1:6443' });
    expect(notReady.controllers).to.deep.equal([
      { name: 'k8s-watch-pods', status: { 'success-count': 0, 'failure-count': 2, 'consecutive-failure-count': 1, 'last-failure-msg': 'connection refused' } },
      { name: 'k8s-watch-namespaces', status: { 'success-count': 1, 'failure-count': 1, 'consecutive-failure-count': 0, 'last-failure-msg': 'HTTP 429' } },
    ]);
    expect((statusResponse(facts({ stopping: true })) as { cilium: unknown }).cilium).to.deep.equal({ state: 'Failure', msg: 'shutting down' });
    expect(statusResponse(facts({ brief: true }))).to.deep.equal({ cilium: { state: 'Ok', msg: 'cilium-ts 0.1.0' } });
    expect((statusResponse(facts({ ipam: undefined })) as { ipam: unknown }).ipam).to.deep.equal({ status: 'waiting for the node podCIDR (spec.ipam.podCIDRs)' });
  });

  it('formats the IPAM line and API names as upstream', () => {
    expect(ipamStatusLine({ podCIDR: '10.1.0.0/16', capacity: 65534, used: {} })).to.equal('IPv4: 0/65534 allocated from 10.1.0.0/16, ');
    expect(k8sApiVersions([watch('namespaces'), watch('something-else')])).to.deep.equal(['core/v1::Namespace', 'something-else']);
  });
});
