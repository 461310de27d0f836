import { expect } from 'chai';
import { parseLabel } from '../labels/labels.js';
import { hasLabels, requestedLabels } from './labels-filter.js';

describe('labels filter of GET /endpoint and /identity', () => {
  const have = ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=ns', 'reserved:host'];

  it('takes labels from the query (repeated or comma-separated) and from a JSON array body', () => {
    const req = { query: new URLSearchParams('labels=k8s:app=web,tier=front&labels=reserved:host'), body: '["any:x=y"]' };
    expect(requestedLabels(req).map((l) => `${l.source}:${l.key}=${l.value}`)).to.deep.equal(['k8s:app=web', 'unspec:tier=front', 'reserved:host=', 'any:x=y']);
    expect(() => requestedLabels({ query: new URLSearchParams(), body: '{"a":1}' })).to.throw(/^labels: the body must be a JSON array of label strings$/);
  });

  it('matches every wanted label, a label without source under any source', () => {
    expect(hasLabels(have, [])).to.equal(true);
    expect(hasLabels(have, ['app=web', 'k8s:io.kubernetes.pod.namespace=ns'].map(parseLabel))).to.equal(true);
    expect(hasLabels(have, ['any:app=web', 'reserved:host'].map(parseLabel))).to.equal(true);
    expect(hasLabels(have, ['app=db'].map(parseLabel))).to.equal(false);
    expect(hasLabels(have, ['reserved:app=web'].map(parseLabel)), 'wrong source').to.equal(false);
    expect(hasLabels(have, ['app=web', 'tier=front'].map(parseLabel)), 'all must match').to.equal(false);
  });
});
