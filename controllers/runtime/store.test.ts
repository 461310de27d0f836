import { expect } from 'chai';
import { setCondition } from './conditions.js';
import { objectKey, splitKey, type KubeObject } from './kinds.js';
import { Store } from './store.js';

const obj = (namespace: string | undefined, name: string, labels: Record<string, string> = {}, extra: Record<string, string> = {}): KubeObject & { data: Record<string, string> } => ({
  metadata: { namespace, name, labels },
  data: extra,
});

describe('Store', () => {
  it('indexes by namespace, label and custom indexes, and keeps them current on update and delete', () => {
    const s = new Store<ReturnType<typeof obj>>();
    s.upsert(obj('a', 'x', { app: 'web' }, { node: 'n1' }));
    s.upsert(obj('a', 'y', { app: 'db' }, { node: 'n2' }));
    s.upsert(obj('b', 'x', { app: 'web' }, { node: 'n1' }));
    s.addIndex('node', (o) => (o.data.node ? [o.data.node] : []));
    const keys = (list: KubeObject[]) => list.map(objectKey).sort();
    expect(keys(s.byNamespace('a'))).to.deep.equal(['a/x', 'a/y']);
    expect(keys(s.byLabel('app', 'web'))).to.deep.equal(['a/x', 'b/x']);
    expect(keys(s.byIndex('node', 'n1'))).to.deep.equal(['a/x', 'b/x']);
    s.upsert(obj('a', 'x', { app: 'db' }, { node: 'n2' }));
    expect(keys(s.byLabel('app', 'web'))).to.deep.equal(['b/x']);
    expect(keys(s.byIndex('node', 'n2'))).to.deep.equal(['a/x', 'a/y']);
    expect(s.delete('b/x')?.metadata?.name).to.equal('x');
    expect(s.byLabel('app', 'web')).to.deep.equal([]);
    expect(s.byIndex('node', 'n1')).to.deep.equal([]);
    expect(s.size).to.equal(2);
    expect(() => s.byIndex('nope', 'v')).to.throw(/no index named nope/);
    expect(() => s.addIndex('node', () => [])).to.throw(/already exists/);
  });

  it('keys cluster-scoped objects by name and namespaced ones by ns/name', () => {
    expect(objectKey(obj(undefined, 'n'))).to.equal('n');
    expect(splitKey('ns/n')).to.deep.equal({ namespace: 'ns', name: 'n' });
    expect(splitKey('n')).to.deep.equal({ name: 'n' });
  });
});

describe('setCondition', () => {
  const t0 = new Date('2026-01-01T00:00:00.500Z');
  const t1 = new Date('2026-01-01T00:05:00Z');

  it('moves lastTransitionTime only when the status changes and records the generation', () => {
    let c = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Pending' }, 1, t0);
    expect(c).to.deep.equal([{ type: 'Ready', status: 'False', reason: 'Pending', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }]);
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'StillPending', message: 'm' }, 2, t1);
    expect(c[0]).to.include({ reason: 'StillPending', observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' });
    c = setCondition(c, { type: 'Ready', status: 'True', reason: 'Done' }, 2, t1);
    expect(c[0]).to.include({ status: 'True', lastTransitionTime: '2026-01-01T00:05:00Z' });
    c = setCondition(c, { type: 'Valid', status: 'True', reason: 'OK' }, 2, t1);
    expect(c.map((x) => x.type)).to.deep.equal(['Ready', 'Valid']);
  });
});
