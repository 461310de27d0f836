import { expect } from 'chai';
import { formatLabel, LabelSet, parseLabel } from './labels.js';

describe('labels', () => {
  it('parses source-prefixed, unprefixed and value-less labels', () => {
    expect(parseLabel('k8s:app=web')).to.deep.equal({ source: 'k8s', key: 'app', value: 'web' });
    expect(parseLabel('reserved:host')).to.deep.equal({ source: 'reserved', key: 'host', value: '' });
    expect(parseLabel('app=web')).to.deep.equal({ source: 'unspec', key: 'app', value: 'web' });
    expect(parseLabel('foo:bar=baz')).to.deep.equal({ source: 'unspec', key: 'foo:bar', value: 'baz' });
    expect(parseLabel('k8s:a=b=c')).to.deep.equal({ source: 'k8s', key: 'a', value: 'b=c' });
    expect(formatLabel(parseLabel('k8s:app=web'))).to.equal('k8s:app=web');
    expect(formatLabel(parseLabel('reserved:host'))).to.equal('reserved:host');
  });

  it('keeps one canonical form whatever the order', () => {
    const a = LabelSet.parse(['k8s:b=2', 'k8s:a=1']);
    const b = LabelSet.parse(['k8s:a=1', 'k8s:b=2']);
    expect(a.key).to.equal(b.key);
    expect(a.strings).to.deep.equal(['k8s:a=1', 'k8s:b=2']);
    expect(a.equals(b)).to.equal(true);
  });

  it('finds keys by source, or under any source', () => {
    const s = LabelSet.parse(['k8s:app=web', 'reserved:host']);
    expect(s.get('app', 'k8s')).to.equal('web');
    expect(s.get('app', 'reserved')).to.equal(undefined);
    expect(s.get('app')).to.equal('web');
    expect(s.get('app', 'any')).to.equal('web');
    expect(s.has('host', 'reserved')).to.equal(true);
    expect(s.filter((l) => l.source === 'k8s').strings).to.deep.equal(['k8s:app=web']);
  });

  it('round-trips CiliumIdentity security-labels', () => {
    const s = LabelSet.parse(['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default']);
    const rec = s.toSecurityLabels();
    expect(rec).to.deep.equal({ 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': 'default' });
    expect(LabelSet.fromSecurityLabels(rec).equals(s)).to.equal(true);
  });
});
