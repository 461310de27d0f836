// The control-plane bench's parts (the benchmark itself is `npm run bench:control-plane`): its
// policies are valid CNPs of the promised mix, percentiles are nearest-rank, and the veth batch
// makes and removes real links.
import { expect } from 'chai';
import { validateCiliumNetworkPolicy } from '../../crds/validation.js';
import { listLinks } from '../../datapath/netns/link.js';
import { benchPod, benchPolicy, inPool, labelSetOf, p50p99, percentile, policyShape } from './control-plane-objects.js';
import { createVeths, removeVeths, vethName } from './control-plane-veths.js';

describe('control-plane bench pieces', function () {
  this.timeout(60_000);

  it('builds valid policies: 2/5 L3, 2/5 L4, 1/5 CIDR, each selecting its label set', () => {
    const shapes = { l3: 0, l4: 0, cidr: 0 };
    const cidrs = new Set<string>();
    for (let j = 0; j < 500; j++) {
      const policy = benchPolicy(j, 200, 'ns');
      const r = validateCiliumNetworkPolicy(policy);
      expect(r.ok, `policy-${j}: ${JSON.stringify(r.ok ? [] : r.errors)}`).to.equal(true);
      expect(policy.spec?.endpointSelector?.matchLabels).to.deep.equal({ app: labelSetOf(j, 200) });
      shapes[policyShape(j)]++;
      for (const c of policy.spec?.egress?.[0]?.toCIDR ?? []) cidrs.add(c);
    }
    expect(shapes).to.deep.equal({ l3: 200, l4: 200, cidr: 100 });
    expect(cidrs.size, 'distinct CIDRs').to.equal(100);
    expect(benchPolicy(2, 200, 'ns', 20_000).spec?.ingress?.[0]?.toPorts?.[0]?.ports?.[0]?.port).to.equal('20000');
    expect(benchPod(205, 200, 'ns', 'node').metadata?.labels).to.deep.equal({ app: 'a5' });
  });

  it('takes nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile([...samples].sort((a, b) => a - b), 50)).to.equal(50);
    expect(p50p99(samples)).to.deep.equal({ p50: 50, p99: 99 });
    expect(p50p99([3.14159])).to.deep.equal({ p50: 3.1, p99: 3.1 });
    expect(() => percentile([], 50)).to.throw(/no samples/);
  });

  it('runs at most `limit` at once and fails on the first error', async () => {
    let running = 0;
    let most = 0;
    await inPool([1, 2, 3, 4, 5, 6, 7], 3, async () => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    });
    expect(most).to.equal(3);
    const failed = await inPool([1, 2], 2, (i) => (i === 2 ? Promise.reject(new Error('boom')) : Promise.resolve())).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(failed).to.equal('boom');
  });

  it('creates and removes veth pairs in one batch', async () => {
    const prefix = 'ctcpt';
    try {
      const links = await createVeths(prefix, 3);
      expect(links.map((l) => l.ifname)).to.deep.equal([vethName(prefix, 0), vethName(prefix, 1), vethName(prefix, 2)]);
      const names = new Set((await listLinks()).map((l) => l.ifname));
      for (const l of links) {
        expect(names.has(`${l.ifname}p`), `peer of ${l.ifname}`).to.equal(true);
        expect(l.ifindex).to.be.above(0);
        expect(l.mac).to.match(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      }
      expect(await removeVeths(prefix)).to.equal(3);
      expect((await listLinks()).filter((l) => l.ifname.startsWith(prefix))).to.deep.equal([]);
    } finally {
      await removeVeths(prefix);
    }
    expect(() => vethName('ctcpbench', 123456)).to.throw(/longer than 15/);
  });
});
