import { expect } from 'chai';
import { buildLabelFilter } from './filter.js';
import { podEndpointLabels, podSecurityLabels, type PodLabelInput } from './pod-labels.js';

describe('pod security labels', () => {
  const { filter } = buildLabelFilter();
  const base: PodLabelInput = {
    podLabels: {},
    namespace: 'shop',
    namespaceLabels: { 'kubernetes.io/metadata.name': 'shop' },
    serviceAccount: 'web',
    clusterName: 'default',
  };

  const cases: { name: string; input: Partial<PodLabelInput>; identity: string[] }[] = [
    {
      name: 'Deployment pod: pod-template-hash dropped',
      input: { podLabels: { app: 'web', 'pod-template-hash': '5d4f8c7b9' } },
      identity: ['k8s:app=web'],
    },
    {
      name: 'StatefulSet pod: controller-revision-hash and pod-name dropped',
      input: { podLabels: { app: 'db', 'controller-revision-hash': 'db-7c8d', 'statefulset.kubernetes.io/pod-name': 'db-0', 'apps.kubernetes.io/pod-index': '0' } },
      identity: ['k8s:app=db'],
    },
    {
      name: 'Job pod: controller-uid, job-completion-index dropped; job-name kept',
      input: {
        podLabels: { 'batch.kubernetes.io/controller-uid': 'u', 'controller-uid': 'u', 'batch.kubernetes.io/job-name': 'j', 'job-name': 'j', 'batch.kubernetes.io/job-completion-index': '1' },
      },
      identity: ['k8s:job-name=j', 'k8s:batch.kubernetes.io/job-name=j'],
    },
    {
      name: 'app.kubernetes.io labels kept',
      input: { podLabels: { 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/instance': 'w1' } },
      identity: ['k8s:app.kubernetes.io/name=web', 'k8s:app.kubernetes.io/instance=w1'],
    },
    {
      name: 'pod cannot spoof Cilium labels',
      input: { podLabels: { 'io.cilium.k8s.policy.serviceaccount': 'admin', 'io.cilium.k8s.namespace.labels.team': 'x', 'io.cilium.k8s.policy.cluster': 'other' } },
      identity: [],
    },
    {
      name: 'no service account: no service-account label',
      input: { podLabels: { app: 'web' }, serviceAccount: '' },
      identity: ['k8s:app=web'],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const input = { ...base, ...c.input };
      const { identity } = podSecurityLabels(input, filter);
      const always = [
        'k8s:io.kubernetes.pod.namespace=shop',
        'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop',
        'k8s:io.cilium.k8s.policy.cluster=default',
        ...(input.serviceAccount ? ['k8s:io.cilium.k8s.policy.serviceaccount=web'] : []),
      ];
      expect(identity.strings).to.have.members([...always, ...c.identity]);
      expect(identity.strings).to.have.length(always.length + c.identity.length);
    });
  }

  it('namespace labels, cluster name and every pod label reach the endpoint labels', () => {
    const all = podEndpointLabels({ ...base, podLabels: { app: 'web', 'pod-template-hash': 'h' }, namespaceLabels: { team: 'a' }, clusterName: 'c1' });
    expect(all.strings).to.deep.equal([
      'k8s:app=web',
      'k8s:io.cilium.k8s.namespace.labels.team=a',
      'k8s:io.cilium.k8s.policy.cluster=c1',
      'k8s:io.cilium.k8s.policy.serviceaccount=web',
      'k8s:io.kubernetes.pod.namespace=shop',
      'k8s:pod-template-hash=h',
    ]);
    const { information } = podSecurityLabels({ ...base, podLabels: { 'pod-template-hash': 'h' } }, filter);
    expect(information.strings).to.deep.equal(['k8s:pod-template-hash=h']);
  });
});
