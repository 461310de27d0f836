import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createNetns, deleteNetns, execInNetns, listNetns } from './netns.js';
import { createVethPair, deleteLink, getLink, listLinks, setLink } from './link.js';
import { addAddress, addRoute, listRoutes, setPermanentNeighbor } from './route.js';
import { getIpv4Conf, setIpv4Conf } from './sysctl.js';
import { CommandError } from './run.js';
import { InvalidNetworkValueError } from './validate.js';

describe('netns/link, route, sysctl (real links)', function () {
  const tag = randomBytes(3).toString('hex');
  const netns = `ctlk-${tag}`;
  const host = `ctlk${tag}`;

  before(async () => {
    await createNetns(netns);
  });
  after(async () => {
    await deleteLink(host);
    await deleteNetns(netns);
  });

  it('creates a veth pair with the peer renamed inside the netns, both ends with the MTU asked for', async () => {
    await createVethPair({ hostName: host, peerNetns: netns, peerName: 'eth0', mtu: 1400 });
    const hostLink = await getLink(host);
    const peer = await getLink('eth0', netns);
    expect(hostLink.mtu).to.equal(1400);
    expect(peer.mtu).to.equal(1400);
    expect(hostLink.mac).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(peer.mac).to.not.equal(hostLink.mac);
    expect((await listLinks()).map((l) => l.ifname)).to.include(host);
    expect(await listNetns()).to.include(netns);
  });

  it('sets links up, addresses, routes, neighbours and forwarding', async () => {
    await setLink(host, { up: true, addrgenmode: 'none' });
    await setLink('eth0', { up: true, mtu: 1300 }, netns);
    expect((await getLink(host)).up).to.equal(true);
    expect((await getLink('eth0', netns)).mtu).to.equal(1300);
    await addAddress('eth0', '10.254.254.10/32', netns);
    await addRoute({ to: '10.254.254.1/32', dev: 'eth0', scope: 'link' }, netns);
    await addRoute({ to: 'default', via: '10.254.254.1', dev: 'eth0' }, netns);
    await setPermanentNeighbor('eth0', '10.254.254.1', (await getLink(host)).mac, netns);
    const routes = await listRoutes(netns);
    expect(routes).to.deep.include({ dst: 'default', gateway: '10.254.254.1', dev: 'eth0', flags: [] });
    expect(routes.map((r) => r.dst)).to.include('10.254.254.1');
    const { stdout } = await execInNetns(netns, 'ip', ['-j', 'neigh', 'show', 'dev', 'eth0']);
    expect(JSON.parse(stdout)).to.deep.include({ dst: '10.254.254.1', lladdr: (await getLink(host)).mac, state: ['PERMANENT'] });
    await setIpv4Conf(host, 'forwarding', 1);
    expect(await getIpv4Conf(host, 'forwarding')).to.equal(1);
  });

  it('fails with the link name and the iproute2 stderr', async () => {
    const err = await createVethPair({ hostName: host, peerNetns: netns, peerName: 'eth1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(CommandError);
    expect((err as CommandError).message).to.contain(`create veth ${host}`).and.to.match(/File exists/);
    const invalid = await setLink('bad name', { up: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(invalid).to.be.instanceOf(InvalidNetworkValueError);
  });

  it('deletes the pair through its host end and reports absent links as false', async () => {
    expect(await deleteLink(host)).to.equal(true);
    expect((await listLinks()).map((l) => l.ifname)).to.not.include(host);
    expect((await listLinks(netns)).map((l) => l.ifname)).to.deep.equal(['lo']);
    expect(await deleteLink(host)).to.equal(false);
    expect(await deleteNetns(netns)).to.equal(true);
    expect(await deleteNetns(netns)).to.equal(false);
    expect(await listNetns()).to.not.include(netns);
  });
});
