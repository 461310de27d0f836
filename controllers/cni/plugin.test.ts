import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runPlugin } from './plugin.js';

const ENV = { CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/var/run/netns/cni-unit', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

describe('cni/plugin (no agent)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cilium-cni-unit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const conf = (fields: object = {}) =>
    JSON.stringify({ cniVersion: '0.4.0', name: 'cilium', type: 'cilium-cni', 'log-file': path.join(dir, 'cni.log'), 'socket-path': path.join(dir, 'absent.sock'), 'delete-queue-dir': path.join(dir, 'q'), ...fields });

  it('answers VERSION with the versions it speaks', async () => {
    const out = await runPlugin({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    expect(out.exitCode).to.equal(0);
    expect(JSON.parse(out.stdout)).to.deep.equal({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
  });

  it('prints an error object with the configuration\'s cniVersion and exits 1', async () => {
    const out = await runPlugin({ ...ENV, CNI_COMMAND: 'ADD', CNI_ARGS: 'K8S_POD_NAME=x' }, conf({ mtu: 'big' }));
    expect(out.exitCode).to.equal(1);
    expect(JSON.parse(out.stdout)).to.deep.equal({ cniVersion: '0.4.0', code: 7, msg: 'invalid network configuration', details: 'field "mtu": must be 0 (agent default) or an integer 68..65535, got "big"' });
    const undecodable = await runPlugin({ ...ENV, CNI_COMMAND: 'ADD' }, '{');
    expect(JSON.parse(undecodable.stdout)).to.include({ cniVersion: '1.0.0', code: 6 });
  });

  it('refuses ADD without the pod\'s name before asking the agent for anything', async () => {
    const out = await runPlugin({ ...ENV, CNI_COMMAND: 'ADD', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default' }, conf());
    expect(JSON.parse(out.stdout)).to.include({ code: 4, msg: 'invalid CNI_ARGS' });
    expect((JSON.parse(out.stdout) as { details: string }).details).to.contain('K8S_POD_NAME');
  });

  it('answers STATUS and GC as the spec says for configurations older than 1.1.0', async () => {
    for (const cmd of ['STATUS', 'GC']) {
      const out = await runPlugin({ CNI_COMMAND: cmd, CNI_PATH: '/opt/cni/bin' }, conf());
      expect(out.exitCode).to.equal(1);
      expect(JSON.parse(out.stdout)).to.include({ code: 1, msg: `config version does not allow ${cmd}` });
    }
  });

  it('CHECK with the agent down is "try again later", not a failed check', async () => {
    const prevResult = { cniVersion: '0.4.0', interfaces: [{ name: 'eth0', sandbox: ENV.CNI_NETNS }], ips: [{ version: '4', interface: 0, address: '10.0.0.2/32' }] };
    const out = await runPlugin({ ...ENV, CNI_COMMAND: 'CHECK' }, conf({ prevResult }));
    expect(JSON.parse(out.stdout)).to.include({ code: 11, msg: 'DaemonDown' });
  });

  it('DEL with the agent down queues the deletion, succeeds, and logs JSON lines with the step times', async () => {
    const out = await runPlugin({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf());
    expect(out).to.deep.equal({ stdout: '', exitCode: 0 });
    const queued = await readdir(path.join(dir, 'q'));
    expect(queued).to.deep.equal(['c0ffee-eth0.delete']);
    expect(JSON.parse(await readFile(path.join(dir, 'q', queued[0]!), 'utf8'))).to.deep.equal({ 'container-id': 'c0ffee', ifname: 'eth0', netns: '' });
    const lines = (await readFile(path.join(dir, 'cni.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = lines.find((l) => l.message === 'CNI DEL done');
    expect(done).to.include({ component: 'cilium-cni', level: 'info', command: 'DEL', containerID: 'c0ffee' });
    expect(Object.keys(done?.durationsMs as object)).to.deep.equal(['startup', 'parse', 'endpoint_link']);
    expect(lines.filter((l) => l.level === 'debug'), 'debug lines without enable-debug').to.deep.equal([]);
  });

  it('with enable-debug, also logs the request it processed', async () => {
    const logFile = path.join(dir, 'debug.log');
    await runPlugin({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf({ 'enable-debug': true, 'log-file': logFile }));
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).to.include({ level: 'debug', message: 'processing CNI DEL request', path: '/opt/cni/bin' });
    expect(JSON.parse(lines[0]!.netconf as string)).to.include({ 'enable-debug': true });
  });
});
