// Cluster-pool IPAM on the real apiserver: distinct podCIDRs, kept across an operator restart
// (the new operator restores and never hands one out twice), conflicts and exhaustion reported in
// status, a deleted node's CIDR handed to the next node.
import { expect } from 'chai';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { IPAM_FIELD_MANAGER } from '../../../controllers/operator/ipam/controller.js';
import { ciliumNodes } from '../../../controllers/runtime/kinds.js';
import { create, deleteIfPresent, getObject, operatorTestContext, testId, waitForObject, waitLeading } from './harness.js';

const podCIDRs = (n: CiliumNode | undefined) => n?.spec.ipam?.podCIDRs ?? [];
const statusError = (n: CiliumNode | undefined) => n?.status?.ipam?.['operator-status']?.error ?? '';

describe('operator IPAM (real apiserver)', function () {
  this.timeout(60_000);
  const t = operatorTestContext();

  const addNode = async (name: string, spec: object = {}) => {
    t.track(ciliumNodes, name);
    await create(t.client, ciliumNodes, { metadata: { name }, spec });
  };
  const cidrOf = async (name: string) => podCIDRs(await waitForObject<CiliumNode>(t.client, ciliumNodes, name, `podCIDR of ${name}`, (n) => podCIDRs(n).length === 1))[0] as string;

  it('gives N nodes distinct podCIDRs; a restarted operator keeps them and adds new nodes without duplicates', async () => {
    const id = testId();
    const first = Array.from({ length: 6 }, (_, i) => `ipam-${id}-${i}`);
    // One node already carries a CIDR from the pool (as after an earlier operator's work).
    await addNode(first[0] as string, { ipam: { podCIDRs: ['10.200.0.0/24'] } });
    for (const n of first.slice(1)) await addNode(n);
    const a = t.operator({ identity: 'a' });
    await waitLeading(a);
    const before = new Map<string, string>();
    for (const n of first) before.set(n, await cidrOf(n));
    expect(before.get(first[0] as string)).to.equal('10.200.0.0/24');
    expect(new Set(before.values()).size).to.equal(first.length);
    for (const cidr of before.values()) expect(cidr).to.match(/^10\.200\.\d+\.0\/24$/);
    const managed = (await getObject<CiliumNode>(t.client, ciliumNodes, first[1] as string))?.metadata.managedFields?.map((f) => f.manager);
    expect(managed).to.include(IPAM_FIELD_MANAGER);

    await a.stop();
    const second = Array.from({ length: 4 }, (_, i) => `ipam-${id}-new-${i}`);
    // Created while no operator runs: the next one must not hand them a CIDR the old one gave out.
    for (const n of second) await addNode(n);
    const b = t.operator({ identity: 'b' });
    await waitLeading(b);
    const after = new Map<string, string>();
    for (const n of [...first, ...second]) after.set(n, await cidrOf(n));
    for (const n of first) expect(after.get(n), n).to.equal(before.get(n));
    expect(new Set(after.values()).size).to.equal(first.length + second.length);
  });

  it('reports a conflicting claim and an exhausted pool in operator-status; the CIDR of a deleted node goes to the next node', async () => {
    const id = testId();
    // 4 node CIDRs in all.
    const a = t.operator({ identity: 'small', args: ['--cluster-pool-ipv4-cidr=10.201.0.0/22'] });
    await waitLeading(a);
    const names = Array.from({ length: 4 }, (_, i) => `ipam-${id}-${i}`);
    for (const n of names) await addNode(n);
    const cidrs = await Promise.all(names.map(cidrOf));
    expect(new Set(cidrs).size).to.equal(4);

    await addNode(`ipam-${id}-claim`, { ipam: { podCIDRs: [cidrs[0]] } });
    const claim = await waitForObject<CiliumNode>(t.client, ciliumNodes, `ipam-${id}-claim`, 'conflict reported', (n) => statusError(n) !== '');
    expect(statusError(claim)).to.equal(`podCIDR ${cidrs[0]} cannot be kept: podCIDR ${cidrs[0]} is already allocated to node ${names[0]}`);
    expect(podCIDRs(claim), 'not renumbered').to.deep.equal([cidrs[0]]);

    await addNode(`ipam-${id}-late`);
    const late = await waitForObject<CiliumNode>(t.client, ciliumNodes, `ipam-${id}-late`, 'exhaustion reported', (n) => statusError(n) !== '');
    expect(statusError(late)).to.match(/^node ipam-\w+-late: no free \/24 left in cluster-pool-ipv4-cidr 10\.201\.0\.0\/22$/);
    expect(podCIDRs(late)).to.deep.equal([]);

    await deleteIfPresent(t.client, ciliumNodes, names[1] as string);
    const got = await waitForObject<CiliumNode>(t.client, ciliumNodes, `ipam-${id}-late`, 'late node gets the released CIDR', (n) => podCIDRs(n).length === 1 && statusError(n) === '');
    expect(podCIDRs(got)).to.deep.equal([cidrs[1]]);
    expect(statusError(await getObject<CiliumNode>(t.client, ciliumNodes, `ipam-${id}-claim`))).to.match(/already allocated/);
  });
});
