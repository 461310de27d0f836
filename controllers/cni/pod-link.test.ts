import { expect } from 'chai';
import { hostIfnameFor, netnsRefOf, randomMac } from './pod-link.js';

describe('cni/pod-link names', () => {
  it('names the host veth as upstream: lxc + 12 hex digits of sha256("<cid>:<ifname>"), 15 characters', () => {
    // printf 'abc:eth0' | sha256sum
    expect(hostIfnameFor('abc', 'eth0')).to.equal('lxcb133159de544');
    expect(hostIfnameFor('abc', 'eth1')).to.not.equal('lxcb133159de544');
    expect(hostIfnameFor('x'.repeat(64), 'eth0')).to.have.length(15);
  });

  it('makes random unicast, locally administered MACs', () => {
    const macs = new Set(Array.from({ length: 64 }, () => randomMac()));
    expect(macs.size).to.equal(64);
    for (const mac of macs) {
      expect(mac).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(parseInt(mac.slice(0, 2), 16) & 0x03, mac).to.equal(0x02);
    }
  });
});

describe('cni/pod-link netns references', () => {
  it('enters namespaces under /run/netns by name and any other by path', () => {
    expect(netnsRefOf('/var/run/netns/cni-1f2e')).to.equal('cni-1f2e');
    expect(netnsRefOf('/run/netns/cni-1f2e')).to.equal('cni-1f2e');
    expect(netnsRefOf('/proc/42/ns/net')).to.deep.equal({ path: '/proc/42/ns/net' });
    expect(netnsRefOf('/run/netns/a/b')).to.deep.equal({ path: '/run/netns/a/b' });
    expect(netnsRefOf('/run/netns/-n')).to.deep.equal({ path: '/run/netns/-n' });
  });
});
