import { expect } from 'chai';
import { PodNetwork } from './pod-network.js';
import { createNetns, deleteNetns, listNetns } from './netns.js';
import { createVethPair, deleteLink, getLink, listLinks } from './link.js';
import { listRoutes } from './route.js';
import { getIpv4Conf } from './sysctl.js';
import { CommandError } from './run.js';
import { InvalidNetworkValueError } from './validate.js';

async function linkNames(): Promise<string[]> {
  return (await listLinks()).map((l) => l.ifname);
}

function leftovers(names: string[], prefix: string): string[] {
  return names.filter((n) => n.startsWith(prefix));
}

describe('netns/PodNetwork (real namespaces)', function () {
  const prefixes = ['ctpn', 'ctpf', 'ctsw'];
  before(async () => {
    for (const p of prefixes) await PodNetwork.sweep(p);
  });
  after(async () => {
    for (const p of prefixes) await PodNetwork.sweep(p);
  });

  describe('two pods without programs', () => {
    let net: PodNetwork | undefined;
    before(async () => {
      net = await PodNetwork.create({ prefix: 'ctpn', pods: ['client', 'server'], mtu: 1450 });
    });
    after(async () => {
      await net?.destroy();
    });

    it('wires each pod: eth0 with its /32, routes via the gateway, host route and forwarding on the host veth', async () => {
      const n = net!;
      for (const pod of n.pods) {
        const host = await getLink(pod.hostIfname);
        expect(host.ifindex).to.equal(pod.hostIfindex);
        expect(host.mac).to.equal(pod.hostMac);
        expect(host.mtu).to.equal(1450);
        expect(host.up).to.equal(true);
        const eth0 = await getLink('eth0', pod.netns);
        expect(eth0.mac).to.equal(pod.podMac);
        expect(eth0.up).to.equal(true);
        const { stdout } = await n.exec(pod.name, 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0']);
        const addr = (JSON.parse(stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>)[0]?.addr_info;
        expect(addr).to.deep.equal([{ ...addr?.[0], local: pod.ip, prefixlen: 32 }]);
        const podRoutes = await listRoutes(pod.netns);
        expect(podRoutes.find((r) => r.dst === 'default')?.gateway).to.equal(n.gateway);
        expect(podRoutes.find((r) => r.dst === n.gateway)?.dev).to.equal('eth0');
        expect((await listRoutes()).find((r) => r.dst === pod.ip)?.dev).to.equal(pod.hostIfname);
        expect(await getIpv4Conf(pod.hostIfname, 'forwarding')).to.equal(1);
      }
    });

    it('pings from one pod to the other through the host (TTL decremented once)', async () => {
      const n = net!;
      const { stdout } = await n.exec('client', 'ping', ['-c', '3', '-i', '0.2', '-W', '2', n.pod('server').ip]);
      expect(stdout).to.match(/3 packets transmitted, 3 received/);
      expect(stdout).to.match(/ttl=63/);
    });

    it('destroy removes every link, route and namespace it made', async () => {
      const n = net!;
      const ips = n.pods.map((p) => p.ip);
      await n.destroy();
      expect(leftovers(await linkNames(), 'ctpn')).to.deep.equal([]);
      expect(leftovers(await listNetns(), 'ctpn')).to.deep.equal([]);
      expect((await listRoutes()).map((r) => r.dst)).to.not.include.members(ips);
      await n.destroy();
    });
  });

  it('removes what it built when a later pod fails, and the error names the netns and stderr', async () => {
    await createNetns('ctpf-1-b');
    try {
      const err = await PodNetwork.create({ prefix: 'ctpf', pods: ['a', 'b', 'c'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(CommandError);
      expect((err as Error).message).to.contain('create netns ctpf-1-b').and.to.contain('File exists');
      expect(leftovers(await linkNames(), 'ctpf')).to.deep.equal([]);
      expect(leftovers(await listNetns(), 'ctpf')).to.deep.equal(['ctpf-1-b']);
    } finally {
      await deleteNetns('ctpf-1-b');
    }
  });

  it('sweep removes links and namespaces an earlier run left with its prefix, and nothing else', async () => {
    await createNetns('ctsw-0-x');
    await createNetns('ctswother');
    try {
      await createVethPair({ hostName: 'ctswh0', peerNetns: 'ctsw-0-x', peerName: 'eth0' });
      const removed = await PodNetwork.sweep('ctsw');
      expect(removed).to.have.members(['ctswh0', 'ctsw-0-x']);
      expect(leftovers(await linkNames(), 'ctsw')).to.deep.equal([]);
      expect(leftovers(await listNetns(), 'ctsw')).to.deep.equal(['ctswother']);
    } finally {
      await deleteLink('ctswh0');
      await deleteNetns('ctsw-0-x');
      await deleteNetns('ctswother');
    }
  });

  it('rejects a bad prefix or duplicate pod names before touching the kernel', async () => {
    const before = await listNetns();
    for (const opts of [
      { prefix: 'Bad-prefix', pods: ['a'] },
      { prefix: 'ctpf', pods: ['a', 'a'] },
      { prefix: 'ctpf', pods: ['a;b'] },
      { prefix: 'ctpf', pods: ['a'], subnet: '10.300.1' },
    ]) {
      const err = await PodNetwork.create(opts).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(opts)).to.be.instanceOf(InvalidNetworkValueError);
    }
    expect(await listNetns()).to.deep.equal(before);
  });
});
