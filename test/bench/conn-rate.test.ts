// The connection-rate piece of `npm run bench:datapath`, on two real pods (needs root).
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { expect } from 'chai';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { pidsMentioning } from '../../hack/controlplane/process.js';
import { measureConnRate } from './conn-rate.js';

const TEMP_PREFIX = 'cilium-ts-conn-rate-';

function leftovers(): { dirs: string[]; pids: number[] } {
  return { dirs: readdirSync(os.tmpdir()).filter((n) => n.startsWith(TEMP_PREFIX)), pids: pidsMentioning(TEMP_PREFIX) };
}

describe('bench conn rate', function () {
  this.timeout(60_000);
  let net: PodNetwork | undefined;

  before(async () => {
    await PodNetwork.sweep('ctcr');
    net = await PodNetwork.create({ prefix: 'ctcr', pods: ['client', 'server'] });
  });

  after(async () => {
    await net?.destroy();
  });

  it('counts connections whose byte came back, and leaves no process or temp dir behind', async () => {
    const before = leftovers();
    const rate = await measureConnRate(net!, 'client', 'server', 1, 5401);
    expect(rate.completed).to.be.greaterThan(0);
    expect(rate.perSecond).to.be.greaterThan(0);
    // A second run right after finds ports and the server port free again.
    expect((await measureConnRate(net!, 'client', 'server', 1, 5401)).completed).to.be.greaterThan(0);
    expect(leftovers()).to.deep.equal(before);
  });

  it('fails naming the refused connections when the path does not carry them', async () => {
    const before = leftovers();
    // In the server pod's own netns, so it goes with the pod network.
    await net!.exec('server', 'iptables', ['-w', '-A', 'INPUT', '-p', 'tcp', '--dport', '5402', '-j', 'REJECT', '--reject-with', 'tcp-reset']);
    let error: Error | undefined;
    try {
      await measureConnRate(net!, 'client', 'server', 1, 5402);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/^conn rate client -> server: 0 connections completed, \d+ failed \(first: Connection refused\)$/);
    expect(leftovers()).to.deep.equal(before);
  });
});
