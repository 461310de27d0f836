// ipcacheWriteOrder against a pure model of the ipcache's longest-prefix lookup: on the way from
// old to new contents every address resolves to the identity the old or the new contents give it
// (never to a third one that policy might allow more broadly), and a sync that cannot fit old and
// added prefixes at once is refused before anything is written.
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeIpcacheKey, decodeRemoteEndpointInfo } from '../maps/ipcache.js';
import { parseIPv4Prefix } from '../maps/ipv4.js';
import type { IPCacheEntry } from '../types.js';
import { ipcacheContents } from './desired-state.js';
import { ipcacheWriteOrder } from './ipcache-writes.js';
import { diffContents, type MapContents, type MapEntry } from './map-sync.js';

const NO_LIMIT = 1 << 20;
const WORLD = 'world';

/** The identity of each address 10.0.0.0-255: its longest covering prefix's, or world when none covers it. */
function resolveAll(map: MapContents): Array<number | typeof WORLD> {
  const prefixes = [...map.values()].map(({ key, value }) => {
    const { addr, bits } = parseIPv4Prefix(decodeIpcacheKey(key));
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return { bits, mask, base: addr.readUInt32BE(0), identity: decodeRemoteEndpointInfo(value).identity };
  });
  return Array.from({ length: 256 }, (_, host) => {
    const ip = ((10 << 24) | host) >>> 0;
    let best: { bits: number; identity: number } | undefined;
    for (const p of prefixes) {
      if ((ip & p.mask) >>> 0 === p.base && (best === undefined || p.bits > best.bits)) best = p;
    }
    return best?.identity ?? WORLD;
  });
}

// Prefixes inside and around 10.0.0.0/24, so they nest and overlap often.
const entriesArb: fc.Arbitrary<IPCacheEntry[]> = fc
  .array(fc.record({ bits: fc.constantFrom(8, 16, 24, 25, 26, 28, 30, 31, 32), host: fc.integer({ min: 0, max: 255 }), identity: fc.integer({ min: 3, max: 6 }) }), { maxLength: 14 })
  .map((raw) => {
    const byPrefix = new Map<string, IPCacheEntry>();
    for (const r of raw) {
      const hostBits = Math.max(0, r.bits - 24);
      const host = hostBits === 0 ? 0 : r.host & ((0xff << (8 - hostBits)) & 0xff);
      const prefix = `10.0.0.${host}/${r.bits}`;
      if (!byPrefix.has(prefix)) byPrefix.set(prefix, { prefix, identity: r.identity });
    }
    return [...byPrefix.values()];
  });

describe('ipcacheWriteOrder', function () {
  it('resolves every address to its old or its new identity after each write', function () {
    fc.assert(
      fc.property(entriesArb, entriesArb, (oldEntries, newEntries) => {
        const before = ipcacheContents(oldEntries, NO_LIMIT);
        const after = ipcacheContents(newEntries, NO_LIMIT);
        const writes = ipcacheWriteOrder(diffContents(before, after), before, NO_LIMIT);
        const [was, will] = [resolveAll(before), resolveAll(after)];
        const state = new Map<string, MapEntry>(before);
        for (const [i, w] of writes.entries()) {
          if (w.value === undefined) state.delete(w.hex);
          else state.set(w.hex, { key: w.key, value: w.value });
          resolveAll(state).forEach((now, host) => {
            if (now !== was[host] && now !== will[host]) expect.fail(`10.0.0.${host} resolves to ${now} after write ${i + 1} of ${writes.length}, was ${was[host]}, will be ${will[host]}`);
          });
        }
        expect([...state.keys()].sort()).to.deep.equal([...after.keys()].sort());
      }),
      { numRuns: 200 },
    );
  });

  it('refuses up front when old and added prefixes together exceed the capacity', function () {
    const before = ipcacheContents([{ prefix: '10.0.0.1/32', identity: 3 }, { prefix: '10.0.0.2/32', identity: 3 }], NO_LIMIT);
    const after = ipcacheContents([{ prefix: '10.0.0.3/32', identity: 3 }, { prefix: '10.0.0.4/32', identity: 3 }], NO_LIMIT);
    const d = diffContents(before, after);
    expect(ipcacheWriteOrder(d, before, 4)).to.have.length(4);
    expect(() => ipcacheWriteOrder(d, before, 3)).to.throw(/cilium_ipcache_v2: holds 2 prefixes and would need room for 2 new ones before removing 2 old ones \(4 > 3 entries\)/);
  });
});
