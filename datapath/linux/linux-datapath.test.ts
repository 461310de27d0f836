// LinuxDatapath lifecycle on the real kernel: diffing syncs that write only the difference,
// endpoint upsert/remove, restart adoption of pinned maps and attached programs, pruning, and
// the event stream.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newLogger } from '../../controllers/runtime/log.js';
import { BpfMap } from '../libbpf/map.js';
import { u32 } from '../libbpf/bytes.js';
import { tcDetach, tcQuery } from '../libbpf/tc.js';
import { decodeIpcacheKey, decodeRemoteEndpointInfo } from '../maps/ipcache.js';
import { decodeEndpointInfo, encodeEndpointKey } from '../maps/lxc.js';
import { decodePolicyKey, decodePolicyValue, encodePolicyKey, encodePolicyValue, POLICY_MAP_MAX_ENTRIES } from '../maps/policy.js';
import type { DatapathEvent, EndpointSpec, IPCacheEntry, PolicyEntry } from '../types.js';
import { DatapathError } from './errors.js';
import { LinuxDatapath } from './linux-datapath.js';
import { policyMapName } from './paths.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, TEST_PREFIX, type TestLink } from './testing/fixtures.js';
import { tcpPacket, TCP_ACK, TCP_SYN } from './testing/packets.js';
import { enforcingWhereEntries } from './testing/policy.js';
import { rejection } from '../../test/support/rejection.js';
import { pollUntil } from '../../test/envtest/poll.js';

const logger = newLogger('datapath-test', 'warn');
const NOT_ENFORCING = { ingress: false, egress: false };

/** The reasons of the drop events queued since the last drain, oldest first; drains the queue. */
function dropReasons(dp: LinuxDatapath): number[] {
  return dp.drainEvents().flatMap((e) => (e.type === 'drop' ? [e.reason] : []));
}

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
    return (['tc-ingress', 'tc-egress'] as const).map((hook) => tcQuery({ ifindex, hook }));
  }
  function pinned(name: string): BpfMap {
    return BpfMap.openPinned(path.join(pinDir!, name));
  }
  /** The policy map id cilium_policy_maps holds for the endpoint (what its programs use). */
  function policyInUse(id: number): number | undefined {
    const outer = pinned('cilium_policy_maps');
    try {
      return outer.lookup(u32(id))?.readUInt32LE(0);
    } finally {
      outer.close();
    }
  }
  function policyMapId(id: number): number {
    const m = pinned(policyMapName(id));
    try {
      return m.id;
    } finally {
      m.close();
    }
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
    } finally {
      try {
        for (const dp of opened.splice(0)) await dp.close();
      } finally {
        removePinDir(pinDir);
      }
    }
  });

  describe('syncIPCache', function () {
    it('writes only the difference and nothing on an identical second sync', async function () {
      const dp = await open();
      const first = ipcache(300, () => 1000);
      expect(await dp.syncIPCache('endpoint', first)).to.deep.equal({ added: 300, updated: 0, removed: 0 });
      expect(await dp.syncIPCache('endpoint', first)).to.deep.equal({ added: 0, updated: 0, removed: 0 });

      const second = ipcache(290, (i) => (i < 5 ? 2000 : 1000));
      second.push({ prefix: '172.16.0.0/12', identity: 3000 }, { prefix: '0.0.0.0/0', identity: 2 });
      expect(await dp.syncIPCache('endpoint', second)).to.deep.equal({ added: 2, updated: 5, removed: 10 });
      expect(await dp.syncIPCache('endpoint', second)).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(dp.mapWrites().cilium_ipcache_v2).to.deep.equal({ updates: 307, deletes: 10 });
    });

    it('treats host bits and bare addresses as the same prefix', async function () {
      const dp = await open();
      await dp.syncIPCache('endpoint', [{ prefix: '10.1.2.3', identity: 5 }, { prefix: '10.9.0.0/16', identity: 6 }]);
      expect(await dp.syncIPCache('endpoint', [{ prefix: '10.1.2.3/32', identity: 5 }, { prefix: '10.9.7.7/16', identity: 6 }])).to.deep.equal({ added: 0, updated: 0, removed: 0 });
    });

    it('refuses one prefix with two identities, naming it', async function () {
      const dp = await open();
      const err = await rejection(dp.syncIPCache('endpoint', [{ prefix: '10.1.0.0/16', identity: 5 }, { prefix: '10.1.0.0/16', identity: 6 }]));
      expect(err).to.be.instanceOf(DatapathError);
      expect(err.message).to.match(/ipcache entry 1 \(10\.1\.0\.0\/16\): prefix given twice with different rows \(identity 5 via 0\.0\.0\.0 and identity 6 via 0\.0\.0\.0\)/);
    });

    it('keeps each source\'s rows: one source\'s sync never erases another\'s, precedence decides a shared prefix', async function () {
      const dp = await open();
      const host = { prefix: '10.99.0.1/32', identity: 1 };
      expect(await dp.syncIPCache('local', [host])).to.deep.equal({ added: 1, updated: 0, removed: 0 });
      const pods = [{ prefix: '10.99.1.5/32', identity: 5000 }, { prefix: '10.99.0.1/32', identity: 5001 }];
      expect(await dp.syncIPCache('endpoint', pods), 'the shared prefix stays the host\'s').to.deep.equal({ added: 1, updated: 0, removed: 0 });
      const node = { prefix: '10.99.2.0/24', identity: 6, tunnelEndpoint: '192.168.0.2', flags: 2 };
      expect(await dp.syncIPCache('node', [node])).to.deep.equal({ added: 1, updated: 0, removed: 0 });
      expect(await dp.syncIPCache('local', []), 'the endpoint row the host row shadowed takes the prefix').to.deep.equal({ added: 0, updated: 1, removed: 0 });
      expect(await dp.syncIPCache('endpoint', []), 'endpoint removes only its own rows').to.deep.equal({ added: 0, updated: 0, removed: 2 });
      const map = pinned('cilium_ipcache_v2');
      try {
        expect([...map.entries()].map(([k, v]) => [decodeIpcacheKey(k), decodeRemoteEndpointInfo(v)])).to.deep.equal([
          ['10.99.2.0/24', { identity: 6, tunnelEndpoint: '192.168.0.2', encryptKey: 0, flags: 2 }],
        ]);
      } finally {
        map.close();
      }
    });

    it('after a restart keeps the rows it found until every source has synced once', async function () {
      const first = await open();
      await first.syncIPCache('local', [{ prefix: '10.99.0.1/32', identity: 1 }]);
      await first.syncIPCache('endpoint', [{ prefix: '10.99.1.5/32', identity: 5000 }]);
      await first.close();
      opened.splice(0);
      const second = await open();
      expect(await second.syncIPCache('endpoint', []), 'the restored endpoint row stays while local has not synced').to.deep.equal({ added: 0, updated: 0, removed: 0 });
      await second.syncIPCache('node', []);
      await second.syncIPCache('cidr', []);
      expect(await second.syncIPCache('local', [{ prefix: '10.99.0.1/32', identity: 1 }]), 'every source synced: restored rows go').to.deep.equal({ added: 0, updated: 0, removed: 1 });
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
      // The map starts empty: 8 entries and egress's allow-all are added.
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries(entries))).to.deep.equal({ added: 9, updated: 0, removed: 0 });
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries(entries))).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      const withDeny = [...entries, { identity: 2, direction: 'ingress', protocol: 6, port: 0, deny: true } as PolicyEntry];
      // The deny is added and turns the 7 range entries of identity 2 into denies.
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries(withDeny))).to.deep.equal({ added: 1, updated: 7, removed: 0 });
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries([]))).to.deep.equal({ added: 1, updated: 0, removed: 9 });
      expect(dp.mapWrites()['cilium_policy_00010']).to.deep.equal({ updates: 9 + 8 + 1, deletes: 9 });
      expect(dp.mapWrites()['cilium_policy_maps']).to.deep.equal({ updates: 1, deletes: 0 });
    });

    it('needs the endpoint first', async function () {
      const dp = await open();
      const err = await rejection(dp.syncPolicy(999, ...enforcingWhereEntries([])));
      expect(err.message).to.match(/endpoint 999: has no policy map at .*cilium_policy_00999; upsertEndpoint must come first/);
    });
  });

  describe('failing closed', function () {
    const peer = { prefix: '10.100.0.1/32', ip: '10.100.0.1', identity: 1 };
    const allow = (identity: number, port: number): PolicyEntry => ({ identity, direction: 'egress', protocol: 6, port, deny: false });
    let dp: LinuxDatapath;
    let ep: EndpointSpec;
    let sport = 30000;
    /** A new connection each time: conntrack must not decide it. */
    function synTo(ip: string, dport: number): number {
      return dp.testRun('from-container', tcpPacket({ src: ep.ipv4, dst: ip, sport: sport++, dport, flags: TCP_SYN })).retval;
    }
    function lastDropReason(): number | undefined {
      return dropReasons(dp).at(-1);
    }
    beforeEach(async function () {
      dp = await open();
      ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      await dp.syncIPCache('endpoint', [{ prefix: peer.prefix, identity: peer.identity }]);
    });

    it('drops everything (203) when a policy cannot be computed, until a sync succeeds', async function () {
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries([allow(peer.identity, 80)]));
      expect(synTo(peer.ip, 80)).to.equal(0);
      const bad = await rejection(dp.syncPolicy(ep.id, ...enforcingWhereEntries([{ ...allow(peer.identity, 80), port: 70000 }])));
      expect(bad).to.be.instanceOf(DatapathError);
      expect(bad.message).to.match(/endpoint 10: policy cannot be computed, endpoint drops all traffic \(203\).*port must be an integer 0\.\.65535/);
      dp.drainEvents();
      expect(synTo(peer.ip, 80)).to.equal(2);
      expect(lastDropReason()).to.equal(203);

      await dp.syncPolicy(ep.id, ...enforcingWhereEntries([allow(peer.identity, 80)]));
      expect(synTo(peer.ip, 80)).to.equal(0);
      const many = Array.from({ length: POLICY_MAP_MAX_ENTRIES }, (_, i) => allow(1000 + i, 80));
      expect((await rejection(dp.syncPolicy(ep.id, ...enforcingWhereEntries(many)))).message).to.match(/endpoint 10: policy cannot be computed.*16385 map entries/);
      expect(synTo(peer.ip, 80)).to.equal(2);
    });

    it('keeps the original error when closing the endpoint fails too', async function () {
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries([allow(peer.identity, 80)]));
      const outer = pinned('cilium_policy_maps');
      try {
        outer.freeze(); // every later write fails with EPERM: a real kernel failure on demand
        const err = await rejection(dp.syncPolicy(ep.id, ...enforcingWhereEntries([{ ...allow(peer.identity, 80), port: 70000 }])));
        expect(err.message).to.match(/^endpoint 10: policy cannot be computed and the endpoint could not be closed either \(.*cilium_policy_maps.*\): .*port must be an integer 0\.\.65535/);
        expect(err.cause).to.be.instanceOf(AggregateError);
        expect((err.cause as AggregateError).errors.map((e: Error) => e.message)).to.satisfy((m: string[]) => m.length === 2 && /port must be/.test(m[0]!) && /cilium_policy_maps/.test(m[1]!));
      } finally {
        outer.close();
        // The frozen map refuses the endpoint's removal; take the programs off by hand.
        for (const d of opened.splice(0)) await d.close();
        for (const hook of ['tc-ingress', 'tc-egress'] as const) tcDetach({ ifindex: ep.ifindex, hook });
      }
    });

    it('replaces 10,000 entries by 10,000 others within the map\'s capacity', async function () {
      const first = Array.from({ length: 10000 }, (_, i) => allow(100000 + i, 80));
      const second = Array.from({ length: 10000 }, (_, i) => allow(200000 + i, 80));
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries(first))).to.deep.equal({ added: 10001, updated: 0, removed: 0 });
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries(second))).to.deep.equal({ added: 10000, updated: 0, removed: 10000 });
      await dp.syncIPCache('endpoint', [{ prefix: '10.100.0.2/32', identity: 100005 }, { prefix: '10.100.0.3/32', identity: 200005 }]);
      expect(synTo('10.100.0.2', 80)).to.equal(2);
      expect(synTo('10.100.0.3', 80)).to.equal(0);
    });

    it('rewrites closed when no safe order fits: 10,000 allows become 10,000 denies', async function () {
      const allows = Array.from({ length: 10000 }, (_, i) => allow(100000 + i, 80));
      const denies = Array.from({ length: 10000 }, (_, i) => ({ ...allow(100000 + i, 81), deny: true }));
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries(allows));
      // Adding the new denies before removing the old allows would need 20,001 of 16,384 entries.
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries(denies))).to.deep.equal({ added: 10000, updated: 0, removed: 10000 });
      expect(policyInUse(ep.id)).to.equal(policyMapId(ep.id));
      const map = pinned('cilium_policy_00010');
      try {
        const held = map.lookupBatch().map(([key, value]) => ({ key: decodePolicyKey(key), deny: decodePolicyValue(value).deny }));
        expect(held).to.have.length(10001);
        const egress = held.filter((e) => e.key.egress);
        expect(egress.every((e) => e.deny && e.key.dport === 81 && e.key.identity >= 100000 && e.key.identity < 110000)).to.equal(true);
      } finally {
        map.close();
      }
      await dp.syncIPCache('endpoint', [{ prefix: '10.100.0.2/32', identity: 100005 }]);
      dp.drainEvents();
      expect(synTo('10.100.0.2', 81)).to.equal(2);
      expect(lastDropReason()).to.equal(181);
      expect(synTo('10.100.0.2', 80)).to.equal(2);
      expect(lastDropReason()).to.equal(133);
    });

    it('fails the endpoint closed when the policy revision cannot be published, live flows and both causes included', async function () {
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries([allow(peer.identity, 80)]));
      const live = { src: ep.ipv4, dst: peer.ip, sport: sport++, dport: 80 };
      expect(dp.testRun('from-container', tcpPacket({ ...live, flags: TCP_SYN })).retval).to.equal(0);
      const revision = pinned('cilium_policy_revision');
      try {
        revision.freeze(); // every later bump fails with EPERM
        const err = await rejection(dp.syncPolicy(ep.id, ...enforcingWhereEntries([allow(peer.identity, 81)])));
        expect(err.message).to.match(/^cilium_policy_revision: could not be bumped after policy sync of endpoint 10, cached verdicts may be stale; endpoint\(s\) 10 drop all traffic \(203\)/);
        dp.drainEvents();
        // Its entry still holds the revision it was allowed at, which did not move.
        expect(dp.testRun('from-container', tcpPacket({ ...live, flags: TCP_ACK })).retval, 'the live flow is cut too').to.equal(2);
        expect(lastDropReason()).to.equal(203);
        expect(synTo(peer.ip, 81), 'the new allow is not trusted without a revision').to.equal(2);
        expect(lastDropReason()).to.equal(203);
        const both = await rejection(dp.syncPolicy(ep.id, ...enforcingWhereEntries([{ ...allow(peer.identity, 80), port: 70000 }])));
        expect(both.message).to.match(/could not be bumped after policy sync of endpoint 10.*the policy sync of endpoint 10 itself failed: .*port must be an integer/);
        expect((both.cause as AggregateError).errors.map((e: Error) => e.message)).to.satisfy((m: string[]) => m.length === 2 && /policy cannot be computed/.test(m[0]!) && /cilium_policy_revision|EPERM|not permitted/i.test(m[1]!));
      } finally {
        revision.close();
        // The frozen revision fails the endpoint's removal; take the programs off by hand.
        for (const d of opened.splice(0)) await d.close();
        for (const hook of ['tc-ingress', 'tc-egress'] as const) tcDetach({ ifindex: ep.ifindex, hook });
      }
    });

    it('leaves the endpoint closed when a write fails part way, counting the writes made', async function () {
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries([allow(peer.identity, 443)]));
      // Fill the map behind the datapath's back, so its next additions run out of room.
      const pinned = BpfMap.openPinned(path.join(pinDir!, 'cilium_policy_00010'));
      try {
        for (let i = 0; i < POLICY_MAP_MAX_ENTRIES - 2; i++) {
          pinned.update(encodePolicyKey({ identity: 900000 + i, egress: false, protocol: 6, dport: 1, prefixLen: 24 }), encodePolicyValue({ deny: false, prefixLen: 24 }));
        }
      } finally {
        pinned.close();
      }
      const before = dp.mapWrites()['cilium_policy_00010']!;
      const next = [1000, 1001, 1002].map((port) => allow(peer.identity, port));
      const err = await rejection(dp.syncPolicy(ep.id, ...enforcingWhereEntries(next)));
      expect(err.message).to.match(/endpoint 10: policy write failed, endpoint drops all traffic \(203\).*map cilium_policy_00010: write 3 of 4 failed/);
      // The old allow went first, then one addition fitted in the freed slot.
      expect(dp.mapWrites()['cilium_policy_00010']).to.deep.equal({ updates: before.updates + 1, deletes: before.deletes + 1 });
      dp.drainEvents();
      expect(synTo(peer.ip, 1000)).to.equal(2);
      expect(lastDropReason()).to.equal(203);
      // The shadow was re-read: the next sync removes what was written behind its back.
      expect(await dp.syncPolicy(ep.id, ...enforcingWhereEntries(next))).to.deep.equal({ added: 2, updated: 0, removed: POLICY_MAP_MAX_ENTRIES - 2 });
      expect(synTo(peer.ip, 1001)).to.equal(0);
    });
  });

  describe('policy revision', function () {
    function revision(): number {
      const map = pinned('cilium_policy_revision');
      try {
        return map.lookup(u32(0))?.readUInt32LE(0) ?? 0;
      } finally {
        map.close();
      }
    }

    it('moves once per change that writes, never on an identical call, and counts the bump', async function () {
      const dp = await open();
      const ep = endpoint(0);
      const policy: PolicyEntry[] = [{ identity: 1, direction: 'egress', protocol: 6, port: 443, deny: false }];
      const changes: Array<[string, () => Promise<unknown>]> = [
        ['upsertEndpoint', () => dp.upsertEndpoint(ep)],
        ['syncPolicy', () => dp.syncPolicy(ep.id, ...enforcingWhereEntries(policy))],
        ['syncIPCache', () => dp.syncIPCache('endpoint', ipcache(5, () => 1))],
      ];
      for (const [name, change] of changes) {
        const rev = revision();
        const bumps = dp.mapWrites()['cilium_policy_revision']?.updates ?? 0;
        await change();
        expect(revision(), `${name} that writes`).to.equal(rev + 1);
        expect(dp.mapWrites()['cilium_policy_revision']?.updates, `${name} counts its bump`).to.equal(bumps + 1);
        const writes = dp.mapWrites();
        await change();
        expect(revision(), `identical ${name}`).to.equal(rev + 1);
        expect(dp.mapWrites(), `identical ${name}`).to.deep.equal(writes);
      }
      const rev = revision();
      expect(await dp.resync()).to.deep.include({ cilium_lxc: { added: 0, updated: 0, removed: 0 } });
      expect(revision(), 'a resync that repairs nothing').to.equal(rev);
      await dp.removeEndpoint(ep.id);
      expect(revision()).to.equal(rev + 1);
      await dp.removeEndpoint(ep.id);
      expect(revision(), 'removing what is gone').to.equal(rev + 1);
    });
  });

  describe('resync', function () {
    it('repairs entries changed behind the datapath\'s back, which a sync does not see', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      const policy: PolicyEntry[] = [{ identity: 5, direction: 'egress', protocol: 6, port: 80, deny: false }];
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries(policy));
      const cache = ipcache(3, () => 5);
      await dp.syncIPCache('endpoint', cache);
      const syn = tcpPacket({ src: ep.ipv4, dst: '10.100.0.1', sport: 1000, dport: 80, flags: TCP_SYN });
      expect(dp.testRun('from-container', syn).retval).to.equal(0);

      const pinned = (name: string): BpfMap => BpfMap.openPinned(path.join(pinDir!, name));
      const ipc = pinned('cilium_ipcache_v2');
      const pol = pinned('cilium_policy_00010');
      const outer = pinned('cilium_policy_maps');
      try {
        const [key] = [...ipc.keys()];
        ipc.delete(key!);
        const junk = Buffer.from(key!);
        junk.writeUInt8(99, 8);
        ipc.update(junk, Buffer.alloc(ipc.valueSize));
        const allowKey = encodePolicyKey({ identity: 5, egress: true, protocol: 6, dport: 80, prefixLen: 24 });
        pol.update(allowKey, encodePolicyValue({ deny: true, prefixLen: 24 }));
        outer.delete(u32(ep.id));
      } finally {
        for (const m of [ipc, pol, outer]) m.close();
      }
      expect(await dp.syncIPCache('endpoint', cache)).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(await dp.resync()).to.deep.equal({
        cilium_lxc: { added: 0, updated: 0, removed: 0 },
        cilium_ipcache_v2: { added: 1, updated: 0, removed: 1 },
        cilium_policy_00010: { added: 0, updated: 1, removed: 0 },
        cilium_policy_maps: { added: 1, updated: 0, removed: 0 },
      });
      expect(dp.testRun('from-container', syn).retval).to.equal(0);
      const clean = await dp.resync();
      expect(Object.values(clean).every((r) => r.added + r.updated + r.removed === 0), JSON.stringify(clean)).to.equal(true);
    });

    it('rewrites each policy map as syncPolicy does, failing closed alone and reporting every failure', async function () {
      const dp = await open();
      const [a, b] = [endpoint(0), endpoint(1)];
      for (const ep of [a, b]) await dp.upsertEndpoint(ep);
      const policy: PolicyEntry[] = [{ identity: 5, direction: 'egress', protocol: 6, port: 80, deny: false }];
      for (const ep of [a, b]) await dp.syncPolicy(ep.id, ...enforcingWhereEntries(policy));
      await dp.syncIPCache('endpoint', [{ prefix: '10.100.0.1/32', identity: 5 }]);
      const syn = (ep: EndpointSpec): Buffer => tcpPacket({ src: ep.ipv4, dst: '10.100.0.1', sport: 1000, dport: 80, flags: TCP_SYN });
      const allowKey = encodePolicyKey({ identity: 5, egress: true, protocol: 6, dport: 80, prefixLen: 24 });
      const asDeny = encodePolicyValue({ deny: true, prefixLen: 24 });
      // Both policy maps get their allow turned into a deny; a's map then refuses every write.
      for (const ep of [a, b]) {
        const m = pinned(policyMapName(ep.id));
        try {
          m.update(allowKey, asDeny);
          if (ep === a) m.freeze();
        } finally {
          m.close();
        }
      }
      const ipc = pinned('cilium_ipcache_v2');
      try {
        ipc.delete([...ipc.keys()][0]!);
      } finally {
        ipc.close();
      }
      const err = await rejection(dp.resync());
      expect(err.message).to.match(/^datapath resync: 1 map\(s\) could not be repaired, the rest were: cilium_policy_00010: endpoint 10: policy write failed, endpoint drops all traffic \(203\).*map cilium_policy_00010: write 1 of 1 failed/);
      expect(policyInUse(a.id)).to.equal(undefined);
      dp.drainEvents();
      expect(dp.testRun('from-container', syn(a)).retval).to.equal(2);
      expect(dropReasons(dp)).to.deep.equal([203]);
      // b's map and the ipcache, after a's in the walk, were still repaired.
      expect(policyInUse(b.id)).to.equal(policyMapId(b.id));
      expect(dp.testRun('from-container', syn(b)).retval).to.equal(0);
    });
  });

  describe('input checks', function () {
    it('name the field and value of a bad endpoint or ipcache entry', async function () {
      const dp = await open();
      const ep = endpoint(0);
      const cases: Array<[Promise<unknown>, RegExp]> = [
        [dp.upsertEndpoint({ ...ep, id: 5000 }), /endpoint 5000: id 5000 must be an integer 1\.\.4095/],
        [dp.upsertEndpoint({ ...ep, identity: 0 }), /endpoint 10: identity 0 must be an integer 1\.\.4294967295/],
        [dp.upsertEndpoint({ ...ep, ipv4: '10.0.0' }), /endpoint 10: .*ipv4.*10\.0\.0/],
        [dp.upsertEndpoint({ ...ep, mac: 'zz' }), /endpoint 10: .*mac.*zz/],
        [dp.syncIPCache('endpoint', [{ prefix: '10.0.0.0/8', identity: 2 ** 32 }]), /ipcache entry 0 \(10\.0\.0\.0\/8\): identity 4294967296 must be/],
        [dp.syncIPCache('endpoint', [{ prefix: '10.0.0.0/8', identity: 5 }, { prefix: '10.0.0.0/40', identity: 5 }]), /ipcache entry 1 \(10\.0\.0\.0\/40\): .*ipcache prefix/],
        [dp.syncPolicy(0, ...enforcingWhereEntries([])), /endpoint 0: id 0 must be an integer 1\.\.4095/],
      ];
      for (const [p, reason] of cases) {
        const err = await rejection(p);
        expect(err, reason.source).to.be.instanceOf(DatapathError);
        expect(err.message).to.match(reason);
      }
    });

    it('refuse a pin directory that is not on a bpffs, mounting nothing there', async function () {
      const dir = mkdtempSync(path.join(tmpdir(), TEST_PREFIX));
      try {
        const err = await rejection(LinuxDatapath.open({ bpffsDir: dir, logger }));
        expect(err.message).to.equal(`pin directory ${dir}: is not on a bpffs; use a directory under /sys/fs/bpf or mount a bpffs there first`);
        expect(readdirSync(dir)).to.deep.equal([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuse a pinned policy map of another shape, saying what differs', async function () {
      const dp = await open();
      const ep = endpoint(0);
      const other = BpfMap.create({ type: 'hash', name: 'ctsdp_wrong', keySize: 12, valueSize: 12, maxEntries: 100 });
      try {
        other.pin(path.join(pinDir!, 'cilium_policy_00010'));
      } finally {
        other.close();
      }
      const err = await rejection(dp.upsertEndpoint(ep));
      expect(err.message).to.match(/policy map .*cilium_policy_00010: is not this datapath's policy map: type is hash, expected lpm_trie, maxEntries is 100, expected 16384, flags is 0, expected 1$/);
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
      expect(dp.testRun('from-container', syn).retval, 'no policy synced yet').to.equal(2);
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries([]));
      expect(dp.testRun('from-container', syn).retval).to.equal(0);
    });

    it('moves an endpoint to a new address and link; the old link keeps dropping in both directions', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      await dp.syncPolicy(ep.id, [], NOT_ENFORCING);
      const moved = { ...ep, ipv4: '10.210.1.1', ifname: links[1]!.ifname, ifindex: links[1]!.ifindex };
      await dp.upsertEndpoint(moved);
      const programs = [dp.programId('from-container'), dp.programId('to-container')];
      expect(attachedIds(ep.ifindex)).to.deep.equal(programs);
      expect(attachedIds(moved.ifindex)).to.deep.equal(programs);
      dp.drainEvents();
      expect(dp.testRun('from-container', tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN }), 1, ep.ifindex).retval, 'old address sent on the old link').to.equal(2);
      expect(dp.testRun('to-container', tcpPacket({ src: '192.0.2.1', dst: ep.ipv4, sport: 80, dport: 1000, flags: TCP_SYN }), 1, ep.ifindex).retval, 'old address delivered on the old link').to.equal(2);
      expect(dp.testRun('to-container', tcpPacket({ src: '192.0.2.1', dst: moved.ipv4, sport: 80, dport: 1000, flags: TCP_SYN }), 1, ep.ifindex).retval, 'new address delivered on the old link').to.equal(2);
      expect(dp.testRun('to-container', tcpPacket({ src: '192.0.2.1', dst: moved.ipv4, sport: 80, dport: 1000, flags: TCP_SYN })).retval, 'new address on the new link').to.equal(0);
      expect(dropReasons(dp)).to.deep.equal([132, 151, 151]);
    });

    it('moves an endpoint that keeps its address to a new link; the old link drops its traffic', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      await dp.syncPolicy(ep.id, [], NOT_ENFORCING);
      await dp.upsertEndpoint({ ...ep, ifname: links[1]!.ifname, ifindex: links[1]!.ifindex });
      expect(attachedIds(ep.ifindex)).to.deep.equal([dp.programId('from-container'), dp.programId('to-container')]);
      expect(attachedIds(links[1]!.ifindex)).to.deep.equal([dp.programId('from-container'), dp.programId('to-container')]);
      const syn = tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN });
      expect(dp.testRun('from-container', syn, 1, ep.ifindex).retval).to.equal(2);
      expect(dp.testRun('from-container', syn, 1, links[1]!.ifindex).retval).to.equal(0);
    });

    it('rolls back when a hook cannot be attached: no lxc entry, nothing left on the other hook', async function () {
      const dp = await open();
      const link = await createTestLink('lr');
      try {
        // Another classifier holds egress priority 1 for IPv4 only, so the egress filter (all
        // protocols) cannot go on at that priority.
        execFileSync('tc', ['qdisc', 'add', 'dev', link.ifname, 'clsact']);
        execFileSync('tc', ['filter', 'add', 'dev', link.ifname, 'egress', 'pref', '1', 'protocol', 'ip', 'u32', 'match', 'u32', '0', '0']);
        const ep: EndpointSpec = { ...endpoint(0), ifname: link.ifname, ifindex: link.ifindex };
        const err = await rejection(dp.upsertEndpoint(ep));
        expect(err.message, err.message).to.match(new RegExp(`^endpoint 10 link ${link.ifname} \\(ifindex ${link.ifindex}\\): cannot attach cil_to_container on tc-egress: [\\s\\S]*; rolled back tc-ingress$`));
        expect(tcQuery({ ifindex: link.ifindex, hook: 'tc-ingress' })).to.equal(undefined);
        const syn = tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN });
        // Without its lxc entry the address is no endpoint: the program drops it as spoofed.
        expect(dp.testRun('from-container', syn, 1, link.ifindex).retval).to.equal(2);
        expect(dropReasons(dp)).to.deep.equal([132]);
      } finally {
        await removeTestLink(link);
      }
    });

    it('closes an endpoint whose policy pin was lost while cilium_policy_maps still names the old map', async function () {
      const first = await open();
      const ep = endpoint(0);
      await first.upsertEndpoint(ep);
      await first.syncPolicy(ep.id, ...enforcingWhereEntries([]));
      const oldMap = policyMapId(ep.id);
      await first.close();
      opened.splice(0);
      rmSync(path.join(pinDir!, 'cilium_policy_00010'));
      expect(policyInUse(ep.id)).to.equal(oldMap);

      const second = await open();
      await second.upsertEndpoint(ep);
      expect(policyInUse(ep.id)).to.equal(undefined);
      const syn = tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN });
      second.drainEvents();
      expect(second.testRun('from-container', syn).retval).to.equal(2);
      expect(dropReasons(second)).to.deep.equal([203]);
      await second.syncPolicy(ep.id, ...enforcingWhereEntries([]));
      expect(policyInUse(ep.id)).to.equal(policyMapId(ep.id));
      expect(second.testRun('from-container', syn).retval).to.equal(0);
    });

    it('flushes an address\'s conntrack when another endpoint takes it over; the old owner\'s removal still cleans up', async function () {
      const dp = await open();
      const [a, b] = [endpoint(0), endpoint(1)];
      await dp.upsertEndpoint(a);
      await dp.upsertEndpoint(b);
      await dp.syncPolicy(a.id, [], NOT_ENFORCING);
      await dp.syncPolicy(b.id, [], { ingress: true, egress: false });
      const toA = tcpPacket({ src: '192.0.2.1', dst: a.ipv4, sport: 80, dport: 1000, flags: TCP_SYN });
      expect(dp.testRun('to-container', toA).retval).to.equal(0);
      expect(dp.conntrack().map((c) => c.tuple.daddr)).to.deep.equal([a.ipv4]);

      // b takes a's address: a's flow must not pass into b as established.
      await dp.upsertEndpoint({ ...b, ipv4: a.ipv4 });
      expect(dp.conntrack()).to.deep.equal([]);
      dp.drainEvents();
      expect(dp.testRun('to-container', toA).retval, 'judged by b\'s ingress policy').to.equal(2);
      expect(dropReasons(dp)).to.deep.equal([133]);

      await dp.removeEndpoint(a.id);
      expect(existsSync(path.join(pinDir!, policyMapName(a.id)))).to.equal(false);
      expect(policyInUse(a.id)).to.equal(undefined);
      const lxc = pinned('cilium_lxc');
      try {
        expect(decodeEndpointInfo(lxc.lookup(encodeEndpointKey(a.ipv4))!).lxcId, 'the address stays b\'s').to.equal(b.id);
      } finally {
        lxc.close();
      }
      expect(await dp.pruneEndpoints([b.id])).to.deep.equal([]);
    });

    it('fails closed when a policy pin was lost before the first sync after a restart', async function () {
      const first = await open();
      const ep = endpoint(0);
      await first.upsertEndpoint(ep);
      await first.syncPolicy(ep.id, [], NOT_ENFORCING);
      await first.close();
      opened.splice(0);
      rmSync(path.join(pinDir!, policyMapName(ep.id)));

      const second = await open();
      const err = await rejection(second.syncPolicy(ep.id, [], NOT_ENFORCING));
      expect(err.message).to.match(/^endpoint 10: policy map unavailable, endpoint drops all traffic \(203\) until a sync succeeds: .*has no policy map/);
      expect(policyInUse(ep.id)).to.equal(undefined);
      const syn = tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN });
      second.drainEvents();
      expect(second.testRun('from-container', syn).retval).to.equal(2);
      expect(dropReasons(second)).to.deep.equal([203]);
    });

    it('reads back what an endpoint enforces: closed before its first sync and after a failed one', async function () {
      const dp = await open();
      const ep = endpoint(0);
      expect(() => dp.endpointPolicy(ep.id)).to.throw(DatapathError, /endpoint 10: is not known/);
      await dp.upsertEndpoint(ep);
      expect(dp.endpointPolicy(ep.id)).to.deep.equal({ open: false });
      const entries: PolicyEntry[] = [{ identity: 5, direction: 'ingress', protocol: 6, port: 80, deny: false, cookie: 3 }];
      await dp.syncPolicy(ep.id, entries, { ingress: true, egress: false });
      expect(dp.endpointPolicy(ep.id)).to.deep.equal({ open: true, realized: { entries, enforcement: { ingress: true, egress: false } } });
      await rejection(dp.syncPolicy(ep.id, [{ ...entries[0]!, port: 70000 }], { ingress: true, egress: false }));
      expect(dp.endpointPolicy(ep.id)).to.deep.equal({ open: false });
    });

    it('removes an endpoint: lxc entry, policy map pin, conntrack; its veth keeps the programs and drops', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      await dp.syncPolicy(ep.id, [], NOT_ENFORCING);
      const out = tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN });
      const back = tcpPacket({ src: '192.0.2.1', dst: ep.ipv4, sport: 80, dport: 1000, flags: TCP_SYN | TCP_ACK });
      expect(dp.testRun('from-container', out).retval).to.equal(0);
      expect(dp.conntrack()).to.have.length(1);
      await dp.removeEndpoint(ep.id);
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00010'))).to.equal(false);
      expect(attachedIds(ep.ifindex)).to.deep.equal([dp.programId('from-container'), dp.programId('to-container')]);
      expect(dp.conntrack()).to.have.length(0);
      dp.drainEvents();
      expect(dp.testRun('from-container', out, 1, ep.ifindex).retval).to.equal(2);
      expect(dp.testRun('to-container', back, 1, ep.ifindex).retval).to.equal(2);
      expect(dropReasons(dp)).to.deep.equal([132, 151]);
      expect(await dp.pruneEndpoints([])).to.deep.equal([]);
    });

    it('closes an endpoint and drops its pin before flushing conntrack, so a failed flush leaks nothing', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      await dp.syncPolicy(ep.id, [], NOT_ENFORCING);
      expect(dp.testRun('from-container', tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: 1000, dport: 80, flags: TCP_SYN })).retval).to.equal(0);
      const ct = pinned('cilium_ct4_global');
      try {
        ct.freeze(); // the flush's delete fails with EPERM
        const err = await rejection(dp.removeEndpoint(ep.id));
        expect(err.message).to.match(/cilium_ct4_global/);
      } finally {
        ct.close();
      }
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00010')), 'policy pin').to.equal(false);
      expect(policyInUse(ep.id), 'cilium_policy_maps entry').to.equal(undefined);
      expect(dp.endpointPolicy.bind(dp, ep.id)).to.throw(/is not known to this datapath/);
    });

    it('flushes the conntrack of every pruned endpoint and nothing else', async function () {
      const dp = await open();
      const [a, b] = [endpoint(0), endpoint(1)];
      for (const ep of [a, b]) {
        await dp.upsertEndpoint(ep);
        await dp.syncPolicy(ep.id, [], NOT_ENFORCING);
        for (let port = 1000; port < 1010; port++) expect(dp.testRun('from-container', tcpPacket({ src: ep.ipv4, dst: '192.0.2.1', sport: port, dport: 80, flags: TCP_SYN })).retval).to.equal(0);
      }
      const other = await open();
      expect(await other.pruneEndpoints([b.id])).to.deep.equal([a.id]);
      expect(other.conntrack().map((c) => c.tuple.saddr)).to.have.members(Array(10).fill(b.ipv4));
      expect(await other.pruneEndpoints([])).to.deep.equal([b.id]);
      expect(other.conntrack()).to.deep.equal([]);
      expect(other.mapWrites()['cilium_ct4_global']).to.deep.equal({ updates: 0, deletes: 20 });
    });
  });

  describe('restart', function () {
    it('adopts pinned maps and attached endpoints, replacing programs in place', async function () {
      const first = await open();
      const [a, b] = [endpoint(0), endpoint(1)];
      await first.upsertEndpoint(a);
      await first.upsertEndpoint(b);
      const policy: PolicyEntry[] = [{ identity: 1, direction: 'egress', protocol: 6, port: 443, deny: false }];
      await first.syncPolicy(a.id, ...enforcingWhereEntries(policy));
      const cache = ipcache(50, () => 1);
      await first.syncIPCache('endpoint', cache);
      await first.close();
      opened.splice(0);
      // The programs stay attached with the old process gone.
      expect(attachedIds(a.ifindex).every((id) => id !== undefined)).to.equal(true);

      const second = await open();
      expect(attachedIds(a.ifindex)).to.deep.equal([second.programId('from-container'), second.programId('to-container')]);
      expect(attachedIds(b.ifindex)).to.deep.equal([second.programId('from-container'), second.programId('to-container')]);
      expect(await second.syncIPCache('endpoint', cache)).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(await second.syncPolicy(a.id, ...enforcingWhereEntries(policy))).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      await second.upsertEndpoint(a);
      expect(second.mapWrites()).to.deep.equal({});
      // Enforcement carried over: egress of a allows only identity 1 on 443.
      const syn = tcpPacket({ src: a.ipv4, dst: '10.100.0.1', sport: 1000, dport: 80, flags: TCP_SYN });
      expect(second.testRun('from-container', syn).retval).to.equal(2);

      expect(await second.pruneEndpoints([a.id])).to.deep.equal([b.id]);
      // The pruned endpoint's veth stays filtered: without its lxc entry everything there drops.
      expect(attachedIds(b.ifindex)).to.deep.equal([second.programId('from-container'), second.programId('to-container')]);
      expect(second.testRun('from-container', tcpPacket({ src: b.ipv4, dst: '10.100.0.1', sport: 1000, dport: 80, flags: TCP_SYN }), 1, b.ifindex).retval).to.equal(2);
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00011'))).to.equal(false);
      expect(existsSync(path.join(pinDir!, 'cilium_policy_00010'))).to.equal(true);
    });
  });

  describe('events', function () {
    const isBeingRead = (dp: LinuxDatapath) => {
      try {
        dp.drainEvents();
        return false;
      } catch {
        return true;
      }
    };

    it('streams decoded records to every reader until each aborts', async function () {
      const dp = await open();
      const ep = endpoint(0);
      await dp.upsertEndpoint(ep);
      await dp.syncPolicy(ep.id, ...enforcingWhereEntries([{ identity: 9, direction: 'egress', protocol: 6, port: 1, deny: false }]));
      const readUntilDrop = async (stream: AsyncIterable<DatapathEvent>, ac: AbortController) => {
        const seen: string[] = [];
        for await (const e of stream) {
          seen.push(e.type);
          if (e.type === 'drop') {
            expect(e).to.include({ endpointId: ep.id, srcIdentity: ep.identity, dstIdentity: 2, reason: 133, direction: 'egress' });
            ac.abort();
          }
        }
        return seen;
      };
      const [ac1, ac2] = [new AbortController(), new AbortController()];
      const readers = [readUntilDrop(dp.events(ac1.signal), ac1), readUntilDrop(dp.events(ac2.signal), ac2)];
      expect(() => dp.drainEvents()).to.throw(DatapathError, /is being read/);
      dp.testRun('from-container', tcpPacket({ src: ep.ipv4, dst: '192.0.2.7', sport: 1000, dport: 80, flags: TCP_SYN }));
      expect(await Promise.all(readers)).to.deep.equal([
        ['policy-verdict', 'drop'],
        ['policy-verdict', 'drop'],
      ]);
      // The pump ends with its last poll; then the ring is empty: the readers took everything.
      await pollUntil('the event pump to end', () => !isBeingRead(dp), 2_000);
      expect(dp.drainEvents()).to.deep.equal([]);
    });
  });
});
