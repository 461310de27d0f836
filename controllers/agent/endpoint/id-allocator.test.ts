import { expect } from 'chai';
import { EndpointIdAllocator, MAX_ENDPOINT_ID, MIN_ENDPOINT_ID } from './id-allocator.js';

describe('endpoint id allocator', () => {
  it('hands out the lowest free id from 1 and reuses released ones', () => {
    const a = new EndpointIdAllocator();
    expect([a.allocate(), a.allocate(), a.allocate()]).to.deep.equal([1, 2, 3]);
    expect(a.release(2)).to.equal(true);
    expect(a.release(2), 'second release').to.equal(false);
    expect(a.allocate()).to.equal(2);
    expect(a.allocate()).to.equal(4);
  });

  it('reuses restored ids before allocating around them', () => {
    const a = new EndpointIdAllocator();
    a.reuse(1);
    a.reuse(3);
    expect(a.allocate()).to.equal(2);
    expect(a.allocate()).to.equal(4);
    expect(() => a.reuse(3)).to.throw(/endpoint id 3: already in use/);
  });

  it('refuses ids outside 1..4095', () => {
    const a = new EndpointIdAllocator();
    for (const bad of [0, MAX_ENDPOINT_ID + 1, 1.5, -1]) expect(() => a.reuse(bad), String(bad)).to.throw(/not an integer in 1\.\.4095/);
  });

  it('fails naming the range once every id is taken', () => {
    const a = new EndpointIdAllocator();
    for (let i = MIN_ENDPOINT_ID; i <= MAX_ENDPOINT_ID; i++) expect(a.allocate()).to.equal(i);
    expect(a.size).to.equal(4095);
    expect(() => a.allocate()).to.throw(/all 4095 ids \(1\.\.4095\) are in use/);
    a.release(4000);
    expect(a.allocate()).to.equal(4000);
  });
});
