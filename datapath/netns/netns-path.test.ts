// A namespace known only by path, as a CNI plugin receives it: here an unnamed one held open by a
// process (/proc/<pid>/ns/net), which `ip netns list` does not show.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execInNetns, listNetns } from './netns.js';
import { createVethPair, deleteLink, getLink, listLinks, setLink } from './link.js';
import { addAddress, addRoute, listRoutes, setPermanentNeighbor } from './route.js';
import { setIpv4Conf } from './sysctl.js';
import { CommandError, runCommand } from './run.js';
import { InvalidNetworkValueError } from './validate.js';
import { assertNetnsPath } from './netns-ref.js';

/** Starts a process in a new, unnamed netns and resolves once it is in it. */
async function unnamedNetns(): Promise<{ holder: ChildProcess; path: string }> {
  const holder = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--', 'sleep', '600'], { stdio: 'ignore' });
  const pid = holder.pid;
  if (pid === undefined) throw new Error('start netns holder (unshare --net sleep): no pid');
  const path = `/proc/${pid}/ns/net`;
  const ours = readlinkSync('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    try {
      if (readlinkSync(path) !== ours) return { holder, path };
    } catch {
      // not started yet
    }
    await sleep(10);
  }
  holder.kill('SIGKILL');
  throw new Error(`netns holder ${pid} did not enter a new netns within 2 s`);
}

describe('netns given by path (unnamed namespace)', function () {
  this.timeout(30_000);
  const host = `ctnp${randomBytes(3).toString('hex')}`;
  let holder: ChildProcess | undefined;
  let netns: { path: string };

  before(async () => {
    const made = await unnamedNetns();
    holder = made.holder;
    netns = { path: made.path };
  });
  after(async () => {
    const errors: unknown[] = [];
    await deleteLink(host).catch((e: unknown) => errors.push(e));
    if (holder && holder.exitCode === null && holder.signalCode === null) {
      const exited = once(holder, 'exit');
      holder.kill('SIGKILL');
      await exited;
    }
    if (errors.length > 0) throw new AggregateError(errors, 'netns path test cleanup');
  });

  it('creates a veth pair into it, configures it there, and the pod end answers a ping from the host', async () => {
    const namesBefore = await listNetns();
    await createVethPair({ hostName: host, peerNetns: netns, peerName: 'eth0', mtu: 1400 });
    expect((await listLinks(netns)).map((l) => l.ifname).sort()).to.deep.equal(['eth0', 'lo']);
    const hostLink = await getLink(host);
    expect(hostLink.mtu).to.equal(1400);
    expect((await getLink('eth0', netns)).mtu).to.equal(1400);

    await setLink(host, { up: true, addrgenmode: 'none' });
    await setLink('eth0', { up: true, addrgenmode: 'none' }, netns);
    await addAddress('eth0', '10.254.253.10/32', netns);
    await addRoute({ to: '10.254.253.1/32', dev: 'eth0', scope: 'link' }, netns);
    await addRoute({ to: 'default', via: '10.254.253.1', dev: 'eth0' }, netns);
    await setPermanentNeighbor('eth0', '10.254.253.1', hostLink.mac, netns);
    expect((await listRoutes(netns)).find((r) => r.dst === 'default')?.gateway).to.equal('10.254.253.1');
    await addRoute({ to: '10.254.253.10/32', dev: host, scope: 'link' });
    await setIpv4Conf(host, 'forwarding', 1);

    const { stdout } = await execInNetns(netns, 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(stdout).to.contain('10.254.253.10');
    const ping = await runCommand('ping the pod end from the host', 'ping', ['-c', '1', '-W', '2', '10.254.253.10']);
    expect(ping.stdout).to.match(/1 received/);
    expect(await listNetns(), 'an unnamed netns gets no name').to.deep.equal(namesBefore);
  });

  it('deletes the pair from inside the namespace', async () => {
    expect(await deleteLink('eth0', netns)).to.equal(true);
    expect((await listLinks()).map((l) => l.ifname)).to.not.include(host);
    expect(await deleteLink('eth0', netns)).to.equal(false);
  });

  it('names the path in errors and refuses paths nsenter could misread', async () => {
    const missing = { path: '/proc/999999999/ns/net' };
    const err = await listLinks(missing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(CommandError);
    expect((err as Error).message).to.contain('in netns at /proc/999999999/ns/net');
    expect(await deleteLink('eth0', missing), 'a namespace that is gone has no link to delete').to.equal(false);
    for (const bad of ['relative/ns', '/proc/1/ns/../ns/net', '/tmp/a b', '/x;id', '']) {
      expect(() => assertNetnsPath(bad), bad).to.throw(InvalidNetworkValueError, /netns path/);
    }
  });
});
