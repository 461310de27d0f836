// The part of the Datapath contract the endpoint manager relies on, run against the real
// LinuxDatapath and against the fake the manager's unit tests use: a fake that passes here may
// stand in for the kernel in those tests.
import { expect } from 'chai';
import { FakeDatapath } from '../../controllers/agent/endpoint/testing.js';
import type { EndpointDatapath } from '../../controllers/agent/endpoint/manager.js';
import { newLogger } from '../../controllers/runtime/log.js';
import { LinuxDatapath } from '../../datapath/linux/linux-datapath.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, type TestLink } from '../../datapath/linux/testing/fixtures.js';
import type { EndpointSpec, PolicyEntry } from '../../datapath/types.js';

interface Subject {
  dp: EndpointDatapath;
  /** Map writes so far. */
  writes(): number;
  close(): Promise<void>;
}

const ENFORCING = { ingress: true, egress: false };
const ENTRIES: PolicyEntry[] = [
  { identity: 1234, direction: 'ingress', protocol: 6, port: 80, deny: false },
  { identity: 0, direction: 'ingress', protocol: 17, port: 53, deny: true },
];

function contract(name: string, open: () => Promise<Subject>): void {
  describe(`endpoint datapath contract: ${name}`, function () {
    let links: TestLink[] = [];
    let subject: Subject | undefined;

    beforeEach(async function () {
      links = [await createTestLink('ca'), await createTestLink('cb')];
      subject = await open();
    });

    afterEach(async function () {
      await subject?.close();
      subject = undefined;
      for (const l of links) await removeTestLink(l);
      links = [];
    });

    function endpoint(i: number, identity = 80000 + i): EndpointSpec {
      const link = links[i]!;
      return { id: 20 + i, ipv4: `10.211.0.${20 + i}`, identity, ifname: link.ifname, ifindex: link.ifindex, mac: '02:00:00:00:02:01', nodeMac: link.mac };
    }

    it('refuses a policy for an endpoint it does not have', async function () {
      let failed = false;
      await subject!.dp.syncPolicy(20, ENTRIES, ENFORCING).catch(() => (failed = true));
      expect(failed).to.equal(true);
    });

    it('reports a first sync as added and an identical second sync as nothing', async function () {
      await subject!.dp.upsertEndpoint(endpoint(0));
      const first = await subject!.dp.syncPolicy(20, ENTRIES, ENFORCING);
      expect(first.added).to.be.greaterThan(0);
      const before = subject!.writes();
      const second = await subject!.dp.syncPolicy(20, ENTRIES, ENFORCING);
      expect(second).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(subject!.writes()).to.equal(before);
    });

    it('writes nothing for an identical upsert and something for a new identity', async function () {
      await subject!.dp.upsertEndpoint(endpoint(0));
      await subject!.dp.syncPolicy(20, ENTRIES, ENFORCING);
      const before = subject!.writes();
      await subject!.dp.upsertEndpoint(endpoint(0));
      expect(subject!.writes()).to.equal(before);
      await subject!.dp.upsertEndpoint(endpoint(0, 90000));
      expect(subject!.writes()).to.be.greaterThan(before);
    });

    it('removes an endpoint so that its policy can no longer be synced', async function () {
      await subject!.dp.upsertEndpoint(endpoint(0));
      await subject!.dp.syncPolicy(20, ENTRIES, ENFORCING);
      await subject!.dp.removeEndpoint(20);
      let failed = false;
      await subject!.dp.syncPolicy(20, ENTRIES, ENFORCING).catch(() => (failed = true));
      expect(failed).to.equal(true);
    });

    it('prunes the endpoints not named, sorted, and keeps the named ones', async function () {
      await subject!.dp.upsertEndpoint(endpoint(0));
      await subject!.dp.upsertEndpoint(endpoint(1));
      await subject!.dp.syncPolicy(20, ENTRIES, ENFORCING);
      await subject!.dp.syncPolicy(21, ENTRIES, ENFORCING);
      expect(await subject!.dp.pruneEndpoints([21])).to.deep.equal([20]);
      const kept = await subject!.dp.syncPolicy(21, ENTRIES, ENFORCING);
      expect(kept).to.deep.equal({ added: 0, updated: 0, removed: 0 });
      expect(await subject!.dp.pruneEndpoints([21])).to.deep.equal([]);
    });
  });
}

contract('FakeDatapath', () => {
  const fake = new FakeDatapath();
  return Promise.resolve({ dp: fake, writes: () => fake.writes, close: () => Promise.resolve() });
});

contract('LinuxDatapath', async () => {
  const pinDir = makePinDir();
  const dp = await LinuxDatapath.open({ bpffsDir: pinDir, logger: newLogger('contract-test', 'warn') });
  const writes = (): number => Object.values(dp.mapWrites()).reduce((n, c) => n + c.updates + c.deletes, 0);
  return {
    dp,
    writes,
    close: async () => {
      await dp.close();
      removePinDir(pinDir);
    },
  };
});
