import { expect } from 'chai';
import { buildCiliumEndpoint } from './cep.js';
import { endpointRecord } from './testing.js';

describe('CiliumEndpoint for an endpoint', () => {
  it('carries what kubectl columns and upstream readers expect, owned by the pod', () => {
    const cep = buildCiliumEndpoint(
      endpointRecord(7, { identityLabels: ['k8s:io.kubernetes.pod.namespace=default', 'k8s:app=web'], serviceAccount: 'web-sa', containerName: 'web' }),
      { nodeName: 'node-1' },
    );
    expect(cep.metadata).to.deep.equal({
      name: 'web-7',
      namespace: 'default',
      labels: { app: 'web' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'web-7', uid: 'uid-7' }],
    });
    expect(cep.status).to.deep.equal({
      id: 7,
      identity: { id: 1007, labels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default'] },
      networking: { addressing: [{ ipv4: '10.0.1.7' }], node: 'node-1' },
      state: 'ready',
      policy: { ingress: { enforcing: true, state: 'enforcing' }, egress: { enforcing: false, state: 'non-enforcing' } },
      'named-ports': [{ name: 'http', port: 8080, protocol: 'TCP' }],
      'service-account': 'web-sa',
      'external-identifiers': {
        'container-id': 'c7',
        'container-name': 'web',
        'k8s-namespace': 'default',
        'k8s-pod-name': 'web-7',
        'pod-name': 'default/web-7',
        'cni-attachment-id': 'c7:eth0',
      },
    });
  });

  it('reports both directions non-enforcing before the first policy sync', () => {
    const cep = buildCiliumEndpoint(endpointRecord(1, { enforcement: undefined, state: 'waiting-for-identity' }), { nodeName: 'n' });
    expect(cep.status?.policy).to.deep.equal({ ingress: { enforcing: false, state: 'non-enforcing' }, egress: { enforcing: false, state: 'non-enforcing' } });
    expect(cep.status?.state).to.equal('waiting-for-identity');
  });

  it('refuses, naming the field, what the CRD schema would refuse', () => {
    const bad = endpointRecord(1, { namedPorts: [{ name: 'http', port: 8080, protocol: 'ICMP' as 'TCP' }] });
    expect(() => buildCiliumEndpoint(bad, { nodeName: 'n' })).to.throw(
      /CiliumEndpoint default\/web-1: status\.named-ports\[0\]\.protocol: Unsupported value: "ICMP"/,
    );
  });
});
