// The bench's libcni-style plugin call, with the reference bridge + host-local plugins on a real
// network namespace: the member's config gets the list's name and version, ADD gives an address in
// the range, DEL with the ADD's result as prevResult releases it, and a failing call rejects with
// the plugin's own error message.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Conflist } from '../../controllers/agent/cni-config.js';
import { repoRoot } from '../../hack/controlplane/paths.js';
import { deleteLink } from '../../datapath/netns/link.js';
import { createNetns, deleteNetns } from '../../datapath/netns/netns.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { invokePlugin, pluginConfig, type PluginCall } from './cni-invoke.js';

const BIN_DIR = path.join(repoRoot, '.local', 'cni-plugins');
const NETNS = 'ctscnitest';
const BRIDGE = 'ctscnitest0';

describe('CNI plugin calls as libcni makes them (reference bridge + host-local)', function () {
  this.timeout(30_000);
  let dataDir: string;
  let conflist: Conflist;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'cni-invoke-'));
    conflist = {
      cniVersion: '1.0.0',
      name: 'invoke-test',
      plugins: [{ type: 'bridge', bridge: BRIDGE, isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet: '172.30.252.0/24' }]], dataDir } }],
    };
    await createNetns(NETNS);
  });
  after(async () => {
    await runCleanup('cni-invoke test', [
      ['netns', () => deleteNetns(NETNS)],
      ['bridge', () => deleteLink(BRIDGE)],
      ['host-local dir', () => rm(dataDir, { recursive: true, force: true })],
    ]);
  });

  it('gives each member the list\'s name and cniVersion, and prevResult when there is one', () => {
    expect(pluginConfig(conflist, 0, { ips: [] })).to.deep.include({ type: 'bridge', name: 'invoke-test', cniVersion: '1.0.0', prevResult: { ips: [] } });
    expect(pluginConfig(conflist, 0)).to.not.have.property('prevResult');
    expect(() => pluginConfig(conflist, 1)).to.throw(/conflist invoke-test: no plugin #1/);
  });

  it('runs ADD and DEL, timing the plugin process', async () => {
    const call: PluginCall = { command: 'ADD', binDir: BIN_DIR, conflist, containerId: 'cni-invoke-test', netns: `/run/netns/${NETNS}`, ifName: 'eth0', args: 'IgnoreUnknown=1;K8S_POD_NAME=x' };
    const add = await invokePlugin(call);
    const result = add.output as { cniVersion: string; ips: { address: string }[] };
    expect(result.cniVersion).to.equal('1.0.0');
    expect(result.ips[0]?.address).to.match(/^172\.30\.252\.\d+\/24$/);
    expect(add.ms).to.be.greaterThan(0);
    const leases = async () => (await readdir(path.join(dataDir, 'invoke-test'))).filter((f) => /^\d/.test(f));
    expect(await leases()).to.have.length(1);
    const del = await invokePlugin({ ...call, command: 'DEL', prevResult: add.output });
    expect(del.output).to.equal(undefined);
    expect(await leases()).to.deep.equal([]);
  });

  it('rejects with the plugin\'s error message', async () => {
    const call: PluginCall = { command: 'ADD', binDir: BIN_DIR, conflist, containerId: 'cni-invoke-bad', netns: '/run/netns/ctscni-does-not-exist', ifName: 'eth0', args: '' };
    let error: Error | undefined;
    await invokePlugin(call).catch((err: Error) => (error = err));
    expect(error?.message).to.match(/^ADD .*bridge \(container cni-invoke-b\): exit 1: CNI error 999: failed to open netns "\/run\/netns\/ctscni-does-not-exist"/);
  });
});
