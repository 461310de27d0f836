// ShadowedMap on a real (unpinned, two-entry) kernel hash map: what a failed write meant to put in
// the map survives the failure, so resync() completes it; writes that change nothing are not
// counted.
import { expect } from 'chai';
import { BpfMap } from '../libbpf/map.js';
import { u32 } from '../libbpf/bytes.js';
import { ShadowedMap, type MapContents } from './map-sync.js';
import { MapWriteCounter } from './map-writes.js';

function contents(...keys: number[]): MapContents {
  return new Map(keys.map((k) => [u32(k).toString('hex'), { key: u32(k), value: u32(k * 10) }]));
}

function held(map: BpfMap): number[] {
  return map.lookupBatch().map(([key]) => key.readUInt32LE(0)).sort((a, b) => a - b);
}

describe('ShadowedMap', function () {
  let map: BpfMap | undefined;
  afterEach(function () {
    map?.close();
    map = undefined;
  });
  function shadowed(): { kernel: BpfMap; sm: ShadowedMap; counts: MapWriteCounter } {
    const kernel = (map = BpfMap.create({ type: 'hash', name: 'ts_shadow_test', keySize: 4, valueSize: 4, maxEntries: 2 }));
    const counts = new MapWriteCounter();
    return { kernel, sm: new ShadowedMap(kernel, 'ts_shadow_test', counts), counts };
  }

  it('keeps what a failed sync meant to write, so resync completes it', function () {
    const { kernel, sm } = shadowed();
    // Another writer takes one of the two slots: the second addition finds no room.
    kernel.update(u32(9), u32(90));
    expect(() => sm.sync(contents(1, 2))).to.throw(/map ts_shadow_test: write 2 of 2 failed/);
    expect(sm.contents.size).to.equal(2);
    expect([...sm.intended.keys()]).to.deep.equal([...contents(1, 2).keys()]);

    kernel.delete(u32(9));
    expect(sm.resync()).to.deep.equal({ added: 1, updated: 0, removed: 0 });
    expect(held(kernel)).to.deep.equal([1, 2]);
    expect(sm.resync()).to.deep.equal({ added: 0, updated: 0, removed: 0 });
  });

  it('does not count the delete of an entry someone else removed already', function () {
    const { kernel, sm, counts } = shadowed();
    sm.sync(contents(1));
    kernel.delete(u32(1));
    expect(sm.sync(contents())).to.deep.equal({ added: 0, updated: 0, removed: 0 });
    expect(counts.snapshot()).to.deep.equal({ ts_shadow_test: { updates: 1, deletes: 0 } });
    expect(held(kernel)).to.deep.equal([]);
  });
});
