// LinuxDatapath lifecycle on the real kernel: diffing syncs that write only the difference,
// endpoint upsert/remove, restart adoption of pinned maps and attached programs, pruning, and
// the event stream.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { newLogger } from '../../controllers/runtime/log.js';
import { tcQuery } from '../libbpf/tc.js';
import type { EndpointSpec, IPCacheEntry, PolicyEntry } from '../types.js';
import { DatapathError } from './errors.js';
import { LinuxDatapath } from './linux-datapath.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, type TestLink } from './testing/fixtures.js';
import { tcpPacket, TCP_SYN } from './testing/packets.js';

const logger = newLogger('datapath-test', 'warn');

function ipcache(n: number, identity: (i: number) => number): IPCacheEntry[] {
  return Array.from({ length: n }, (_, i) => ({ prefix: `10.${100 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}/32`, identity: identity(i) }));
}

describe('LinuxDatapath', function () {
  let links: TestLink[] = [];
  let pinDir: string | undefined;
  const opened: LinuxDatapath[] = [];

  async function open(): Promise<LinuxDatapath> {
    const dp = await LinuxDatapath.open({ bpffsDir: pinDir, logger });
    opened.push(dp);
    return dp;
  }
  function endpoint(i: number): EndpointSpec {
    const link = links[i]!;
    return { id: 10 + i, ipv4: `10.210.0.${10 + i}`, identity: 70000 + i, ifname: link.ifname, ifindex: link.ifindex, mac: '02:00:00:00:01:01', nodeMac: link.mac };
  }
  function attachedIds(ifindex: number): Array<number | undefined> {
    return (['ingress', 'egress'] as const).map((direction) => tcQuery({ ifindex, direction }));
  }

  before(async function () {
    links = [await createTestLink('la'), await createTestLink('lb')];
  });
  after(async function () {
    for (const l of links) await removeTestLink(l);
  });
  beforeEach(function () {
    pinDir = makePinDir();
  });
  afterEach(async function () {
    try {
      const last = opened.at(-1);
      if (last !== undefined) await last.pruneEndpoints([]);
      for (const dp of opened.splice(0)) await dp.close();
    } finally {
      removePinDir(pinDir);
    }
  });

  describe('syncIPCache', function () {
    it('writes only the difference and nothing on an identical second sync', async function () {
      const dp = await open();
      const first = ipcache(300, () => 1000);
      expect(await dp.syncIPCache(first)).to.deep.equal({ added: 300, updated: 0, removed: 0 });
      expect(await dp.syncIPCache(first)).to.deep.equal({ added: 0, updated: 0, removed: 0 });

      const second = ipcache(290, (i) => (i < 5 ? 2000 : 1000));
      second.push({ prefix: '172.16.0.0/12', identity: 3000 }, { prefix: '0.0.0.0/0', identity: 2 });
      expect(await dp.syncIPCache(second)).to.deep.equal({ added: 2, updated: 5, removed: 10 });
      expect(await dp.syncIPCache(second)).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(dp.mapWrites().cilium_ipcache).to.deep.equal({ updates: 307, deletes: 10 });
    });

    it('treats host bits and bare addresses as the same prefix', async function () {
      const dp = await open();
      await dp.syncIPCache([{ prefix: '10.1.2.3', identity: 5 }, { prefix: '10.9.0.0/16', identity: 6 }]);
      expect(await dp.syncIPCache([{ prefix: '10.1.2.3/32', identity: 5 }, { prefix: '10.9.7.7/16', identity: 6 }])).to.deep.equal({ added: 0, updated: 0, removed: 0 });
    });

    it('refuses one prefix with two identities, naming it', async function () {
      const dp = await open();
      const sync = dp.syncIPCache([{ prefix: '10.1.0.0/16', identity: 5 }, { prefix: '10.1.0.0/16', identity: 6 }]);
      try {
        await sync;
        expect.fail('sync accepted a conflicting prefix');
      } catch (err) {
        expect(err).to.be.instanceOf(DatapathError);
        expect((err as Error).message).to.match(/ipcache prefix 10\.1\.0\.0\/16.*5 and 6/);
      }
    });
  });

  describe('syncPolicy', function () {
    it('writes only the difference, counting range expansion per map entry', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      const entries: PolicyEntry[] = [
        { identity: 1, direction: 'ingress', protocol: 6, port: 80, deny: false },
        { identity: 2, direction: 'ingress', protocol: 6, port: 1000, endPort: 1999, deny: false }, // 7 prefixes
      ];
      // 8 entries added; the ingress allow-all written at upsert goes; egress keeps its allow-all.
      expect(await dp.syncPolicy(ep.id, entries)).to.deep.equal({ added: 8, updated: 0, removed: 1 });
      expect(await dp.syncPolicy(ep.id, entries)).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      const withDeny = [...entries, { identity: 2, direction: 'ingress', protocol: 6, port: 0, deny: true } as PolicyEntry];
      // The deny is added and turns the 7 range entries of identity 2 into denies.
      expect(await dp.syncPolicy(ep.id, withDeny)).to.deep.equal({ added: 1, updated: 7, removed: 0 });
      expect(await dp.syncPolicy(ep.id, [])).to.deep.equal({ added: 1, updated: 0, removed: 9 });
      expect(dp.mapWrites()['cilium_policy_00010']).to.deep.equal({ updates: 2 + 8 + 8 + 1, deletes: 10 });
    });

    it('needs the endpoint first', async function () {
      const dp = await open();
      try {
        await dp.syncPolicy(999, []);
        expect.fail('syncPolicy accepted an unknown endpoint');
      } catch (err) {
        expect((err as Error).message).to.match(/endpoint 999: has no policy map at .*cilium_policy_00999; upsertEndpoint must come first/);
      }
    });
  });

  describe('endpoints', function () {
    it('upserts idempotently: lxc entry, pinned policy map, programs on both hooks', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      const before = dp.mapWrites();
      await dp.upsertEndpoint(ep);
      expect(dp.mapWrites()).to.deep.equal(before);
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00010'))).to.equal(true);
      expect(attachedIds(ep.ifindex)).to.deep.equal([dp.programId('from-container'), dp.programId('to-container')]);
      const syn = tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN });
      expect(dp.testRun('from-container', syn).retval).to.equal(0);
    });

    it('moves an endpoint to a new address and link, leaving nothing on the old ones', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      const moved = { ...ep, ipv4: '10.210.1.1', ifname: links[1]!.ifname, ifindex: links[1]!.ifindex };
      await dp.upsertEndpoint(moved);
      expect(attachedIds(ep.ifindex)).to.deep.equal([undefined, undefined]);
      expect(attachedIds(moved.ifindex)).to.deep.equal([dp.programId('from-container'), dp.programId('to-container')]);
      const fromOld = tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN });
      expect(dp.testRun('from-container', fromOld).retval, 'old address is no endpoint any more').to.equal(2);
    });

    it('removes an endpoint: lxc entry, policy map pin, conntrack and tc filters', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      dp.testRun('from-container', tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN }));
      expect(dp.conntrack()).to.have.length(1);
      await dp.removeEndpoint(ep.id);
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00010'))).to.equal(false);
      expect(attachedIds(ep.ifindex)).to.deep.equal([undefined, undefined]);
      expect(dp.conntrack()).to.have.length(0);
      expect(await dp.pruneEndpoints([])).to.deep.equal([]);
    });
  });

  describe('restart', function () {
    it('adopts pinned maps and attached endpoints, replacing programs in place', async function () {
      const first = await open();
      const [a, b] = [endpoint(0), endpoint(1)];
      await first.upsertEndpoint(a);
      await first.upsertEndpoint(b);
      const policy: PolicyEntry[] = [{ identity: 1, direction: 'egress', protocol: 6, port: 443, deny: false }];
      await first.syncPolicy(a.id, policy);
      const cache = ipcache(50, () => 1);
      await first.syncIPCache(cache);
      await first.close();
      opened.splice(0);
      // The programs stay attached with the old process gone.
      expect(attachedIds(a.ifindex).every((id) => id !== undefined)).to.equal(true);

      const second = await open();
      expect(attachedIds(a.ifindex)).to.deep.equal([second.programId('from-container'), second.programId('to-container')]);
      expect(attachedIds(b.ifindex)).to.deep.equal([second.programId('from-container'), second.programId('to-container')]);
      expect(await second.syncIPCache(cache)).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(await second.syncPolicy(a.id, policy)).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      await second.upsertEndpoint(a);
      expect(second.mapWrites()).to.deep.equal({});
      // Enforcement carried over: egress of a allows only identity 1 on 443.
      const syn = tcpPacket({ src: a.ipv4, dst: '10.100.0.1', sport: 1000, dport: 80, flags: TCP_SYN });
      expect(second.testRun('from-container', syn).retval).to.equal(2);

      expect(await second.pruneEndpoints([a.id])).to.deep.equal([b.id]);
      expect(attachedIds(b.ifindex)).to.deep.equal([undefined, undefined]);
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00011'))).to.equal(false);
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00010'))).to.equal(true);
    });
  });

  describe('events', function () {
    it('streams decoded records until aborted, one reader at a time', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      await dp.syncPolicy(ep.id, [{ identity: 9, direction: 'egress', protocol: 6, port: 1, deny: false }]);
      const ac = new AbortController();
      const stream = dp.events(ac.signal);
      expect(() => dp.events()).to.throw(DatapathError, /already has a reader/);
      dp.testRun('from-container', tcpPacket({ src: ep.ipv4, dst: '192.0.2.7', sport: 1000, dport: 80, flags: TCP_SYN }));
      const seen: string[] = [];
      for await (const e of stream) {
        seen.push(e.type);
        if (e.type === 'drop') {
          expect(e).to.include({ endpointId: ep.id, srcIdentity: ep.identity, dstIdentity: 2, reason: 133, direction: 'egress' });
          ac.abort();
        }
      }
      expect(seen).to.deep.equal(['policy-verdict', 'drop']);
      expect(dp.drainEvents()).to.deep.equal([]);
    });
  });
});
