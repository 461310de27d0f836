import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { EndpointRecord } from '../endpoint/endpoint.js';
import { derivedLabels, endpointHealth, endpointModel, identityModel, labelsSHA256, nodeAddressing, policyEnabled } from './models.js';

const ep: EndpointRecord = {
  id: 164,
  containerId: 'abc',
  containerInterfaceName: 'eth0',
  namespace: 'ns',
  podName: 'web',
  ifname: 'lxc0123',
  ifindex: 42,
  mac: '02:00:00:00:00:01',
  hostMac: '02:00:00:00:00:02',
  ipv4: '10.0.0.3',
  externalIpam: false,
  identity: 46212,
  identityLabels: ['k8s:io.kubernetes.pod.namespace=ns', 'k8s:app=web'],
  podLabels: { app: 'web', 'pod-template-hash': '5d' },
  namedPorts: [{ name: 'http', port: 80, protocol: 'TCP' }],
  state: 'ready',
  enforcement: { ingress: true, egress: false },
};

describe('API models', () => {
  it('labelsSHA256 is upstream\'s: the sorted list followed by the empty SHA-512/256 digest', () => {
    const list = 'k8s:app=web;k8s:io.kubernetes.pod.namespace=ns;';
    const expected = Buffer.concat([Buffer.from(list), createHash('sha512-256').digest()]).toString('hex');
    expect(labelsSHA256(['k8s:io.kubernetes.pod.namespace=ns', 'k8s:app=web'])).to.equal(expected);
    expect(identityModel(1, ['reserved:host'])).to.deep.equal({ id: 1, labels: ['reserved:host'], labelsSHA256: labelsSHA256(['reserved:host']) });
  });

  it('maps enforcement and state as upstream', () => {
    expect(policyEnabled({ ingress: true, egress: true })).to.equal('both');
    expect(policyEnabled({ ingress: false, egress: true })).to.equal('egress');
    expect(policyEnabled({ ingress: false, egress: false })).to.equal('none');
    expect(endpointHealth('ready')).to.deep.equal({ bpf: 'OK', policy: 'OK', overallHealth: 'OK', connected: true });
    expect(endpointHealth('not-ready')).to.deep.include({ policy: 'Failure', overallHealth: 'Failure' });
    expect(endpointHealth('waiting-for-identity').overallHealth).to.equal('Bootstrap');
  });

  it('derived labels are the pod labels that are not part of the identity', () => {
    expect(derivedLabels(ep)).to.deep.equal(['k8s:pod-template-hash=5d']);
  });

  it('builds the Endpoint model cilium-dbg reads', () => {
    const m = endpointModel(ep, {
      policyRevision: 9,
      realized: {
        enforcement: { ingress: true, egress: false },
        entries: [
          { identity: 2, direction: 'ingress', protocol: 6, port: 80, deny: false },
          { identity: 300, direction: 'ingress', protocol: 0, port: 0, deny: true },
        ],
      },
      hostAddressing: nodeAddressing({ routerIP: '10.0.0.1', podCIDR: '10.0.0.0/24' }),
    }) as { id: number; status: Record<string, Record<string, unknown>> };
    expect(m.id).to.equal(164);
    expect(m.status.identity).to.deep.include({ id: 46212, labels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=ns'] });
    expect(m.status.labels?.['security-relevant']).to.deep.equal(['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=ns']);
    expect(m.status.networking).to.deep.include({ addressing: [{ ipv4: '10.0.0.3' }], 'interface-name': 'lxc0123', 'interface-index': 42, mac: '02:00:00:00:00:01' });
    expect(m.status['external-identifiers']).to.deep.include({ 'cni-attachment-id': 'abc:eth0', 'pod-name': 'ns/web', 'k8s-pod-name': 'web' });
    expect(m.status.policy?.realized).to.deep.include({
      'policy-enabled': 'ingress',
      'policy-revision': 9,
      'allowed-ingress-identities': [2],
      'denied-ingress-identities': [300],
      'allowed-egress-identities': [],
    });
    expect(m.status.namedPorts).to.deep.equal([{ name: 'http', port: 80, protocol: 'TCP' }]);
    expect(m.status.state).to.equal('ready');
    // Before its first policy sync the endpoint has no realized policy: cilium-dbg prints Unknown.
    const fresh = endpointModel({ ...ep, state: 'waiting-for-identity' }, { policyRevision: 1, hostAddressing: nodeAddressing() }) as { status: { policy: Record<string, unknown> } };
    expect(fresh.status.policy).to.deep.equal({ 'proxy-statistics': [] });
  });
});
