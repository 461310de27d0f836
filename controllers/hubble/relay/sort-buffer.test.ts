import { expect } from 'chai';
import { timestampOf } from '../flow-types.js';
import { SortBuffer } from './sort-buffer.js';

const at = (ms: number, id: string) => ({ time: timestampOf(ms), id });

describe('relay sort buffer', () => {
  it('pops oldest first whatever the arrival order; equal times in arrival order; no time first', () => {
    const b = new SortBuffer<{ time: ReturnType<typeof timestampOf> | null; id: string }>();
    for (const x of [at(30, 'c'), at(10, 'a'), at(20, 'b1'), at(50, 'e'), at(20, 'b2'), at(40, 'd')]) b.push(x);
    b.push({ time: null, id: 'none' });
    const out: string[] = [];
    for (let x = b.pop(); x !== undefined; x = b.pop()) out.push(x.id);
    expect(out).to.deep.equal(['none', 'a', 'b1', 'b2', 'c', 'd', 'e']);
    expect(b.size).to.equal(0);
  });

  it('popOlderThan releases only what is older than the window, in order', () => {
    const b = new SortBuffer<ReturnType<typeof at>>();
    for (let i = 9; i >= 0; i--) b.push(at(1000 + i * 100, String(i)));
    expect(b.popOlderThan(1350).map((x) => x.id)).to.deep.equal(['0', '1', '2', '3']);
    expect(b.size).to.equal(6);
    expect(b.popOlderThan(0)).to.deep.equal([]);
  });

  it('every pop is the oldest held, under random pushes and pops', () => {
    const b = new SortBuffer<ReturnType<typeof at>>();
    const held: number[] = [];
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const ms = Math.floor(rand() * 1e6);
      b.push(at(ms, ''));
      held.push(ms);
      if (rand() < 0.4) {
        const min = Math.min(...held);
        held.splice(held.indexOf(min), 1);
        const x = b.pop()!;
        expect(Number(x.time.seconds) * 1000 + x.time.nanos / 1e6).to.equal(min);
      }
    }
    expect(b.size).to.equal(held.length);
  });
});
