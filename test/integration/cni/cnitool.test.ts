// cilium-cni as a runtime runs it: the bundled plugin, executed by the real cnitool (libcni) against
// a real agent's REST API, building real veths in real network namespaces with the eBPF datapath
// attached. ADD, CHECK and DEL; ADD's failure paths and DEL with the agent down leave nothing
// behind; 200 ADD/DEL cycles leave no address, endpoint, veth or map entry.
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ciliumEndpoints, objectPath } from '../../../controllers/runtime/kinds.js';
import { isNotFound } from '../../../controllers/runtime/apiclient.js';
import { hostIfnameFor } from '../../../controllers/cni/pod-link.js';
import { pollUntil } from '../../envtest/poll.js';
import { getLink, listLinks } from '../../../datapath/netns/link.js';
import { deleteNetns, execInNetns, spawnInNetns } from '../../../datapath/netns/netns.js';
import { runCommand } from '../../../datapath/netns/run.js';
import { killChild } from '../../datapath/children.js';
import { CniNode, type CniCall } from './cni-node.js';

interface Result {
  cniVersion: string;
  interfaces: { name: string; mac: string; sandbox?: string }[];
  ips: { address: string; gateway: string; interface: number }[];
  routes: { dst: string; gw?: string }[];
}

function ok(call: CniCall, what: string): CniCall {
  expect(call.code, `${what}: exit ${call.code}\nstdout: ${call.stdout}\nstderr: ${call.stderr}`).to.equal(0);
  return call;
}

function inCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [base, len] = cidr.split('/');
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  return ((toInt(ip) & mask) >>> 0) === ((toInt(base!) & mask) >>> 0);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10;
}

describe('cilium-cni through the real cnitool (real agent, real kernel)', function () {
  this.timeout(600_000);
  const node = new CniNode();

  before(async function () {
    if (!existsSync(path.join(process.cwd(), '.local', 'bin', 'cnitool'))) throw new Error('.local/bin/cnitool missing: run bash hack/install-tools.sh all');
    await node.start();
  });
  after(async () => {
    await node.destroy();
  });

  function hasEndpoint(pod: string): boolean {
    return node.daemon.endpoints.list().some((e) => e.podName === pod && e.namespace === node.namespace);
  }

  async function cepExists(pod: string): Promise<boolean> {
    try {
      await node.client.request('GET', objectPath(ciliumEndpoints, pod, node.namespace));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async function nothingLeftOf(pod: string, netnsPath: string): Promise<void> {
    const host = hostIfnameFor(CniNode.containerIdOf(netnsPath), 'eth0');
    expect((await listLinks()).map((l) => l.ifname), `host veth ${host}`).to.not.include(host);
    expect((await listLinks({ path: netnsPath })).map((l) => l.ifname), 'links in the pod netns').to.deep.equal(['lo']);
    expect(node.allocatedIPs(), 'addresses held for this test').to.deep.equal([]);
    expect(hasEndpoint(pod), `endpoint of ${pod}`).to.equal(false);
  }

  it('ADD wires two pods that talk; CHECK passes, then fails once the veth is gone; DEL removes everything', async () => {
    const podCIDR = await node.podCIDR();
    const nsA = await node.addPod('alpha');
    const nsB = await node.addPod('beta');
    const a = JSON.parse(ok(await node.cnitool('add', nsA, 'alpha'), 'ADD alpha').stdout) as Result;
    const b = JSON.parse(ok(await node.cnitool('add', nsB, 'beta'), 'ADD beta').stdout) as Result;

    const ipA = a.ips[0]!.address.split('/')[0]!;
    const ipB = b.ips[0]!.address.split('/')[0]!;
    expect(a.cniVersion).to.equal('1.0.0');
    expect(a.ips[0]!.address).to.match(/\/32$/);
    expect(inCidr(ipA, podCIDR) && inCidr(ipB, podCIDR), `${ipA}, ${ipB} in ${podCIDR}`).to.equal(true);
    const hostA = hostIfnameFor(CniNode.containerIdOf(nsA), 'eth0');
    expect(a.interfaces.map((i) => i.name)).to.deep.equal([hostA, 'eth0']);
    expect(a.interfaces[1]!.sandbox).to.equal(nsA);
    expect((await getLink(hostA)).mac).to.equal(a.interfaces[0]!.mac);
    expect((await getLink('eth0', { path: nsA })).mac).to.equal(a.interfaces[1]!.mac);
    const router = a.ips[0]!.gateway;
    expect(a.routes).to.deep.equal([{ dst: `${router}/32` }, { dst: '0.0.0.0/0', gw: router }]);
    const { stdout: addr } = await execInNetns({ path: nsA }, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(addr).to.contain(`${ipA}/32`);
    expect(node.allocatedIPs().sort()).to.deep.equal([ipA, ipB].sort());
    expect(node.lxcKeys()).to.include.members([ipA, ipB]);

    const ep = node.daemon.endpoints.list().find((e) => e.podName === 'alpha');
    expect(ep, 'endpoint of alpha').to.not.equal(undefined);
    expect(ep).to.include({ containerId: CniNode.containerIdOf(nsA), ifname: hostA, ipv4: ipA });
    for (const deadline = Date.now() + 20_000; !(await cepExists('alpha')) && Date.now() < deadline; ) await sleep(100);
    expect(await cepExists('alpha'), 'CiliumEndpoint of alpha').to.equal(true);

    // Real traffic both ways: ICMP, and HTTP over TCP.
    const ping = await execInNetns({ path: nsA }, 'ping', ['-c', '2', '-W', '2', ipB]);
    expect(ping.stdout).to.match(/2 received/);
    const www = path.join(node.tmp, 'www');
    await mkdir(www, { recursive: true });
    await writeFile(path.join(www, 'index.html'), 'hello from beta\n');
    const httpd = spawnInNetns({ path: nsB }, 'busybox', ['httpd', '-f', '-p', '8080', '-h', www]);
    try {
      let body = '';
      for (const deadline = Date.now() + 10_000; body === '' && Date.now() < deadline; ) {
        body = await execInNetns({ path: nsA }, 'curl', ['-s', '-m', '2', `http://${ipB}:8080/`]).then(
          (r) => r.stdout,
          () => '',
        );
        if (body === '') await sleep(100);
      }
      expect(body).to.equal('hello from beta\n');
    } finally {
      await killChild(httpd);
    }

    ok(await node.cnitool('check', nsA, 'alpha'), 'CHECK alpha');
    // Deleting the host end takes the pod end with it.
    await execInNetns({ path: nsA }, 'ip', ['link', 'delete', 'dev', 'eth0']);
    const check = await node.cnitool('check', nsA, 'alpha');
    expect(check.code).to.not.equal(0);
    expect(check.stderr + check.stdout).to.contain('interface check failed');

    ok(await node.cnitool('del', nsA, 'alpha'), 'DEL alpha');
    ok(await node.cnitool('del', nsA, 'alpha'), 'DEL alpha again (idempotent)');
    ok(await node.cnitool('del', nsB, 'beta'), 'DEL beta');
    await nothingLeftOf('alpha', nsA);
    await nothingLeftOf('beta', nsB);
    expect(node.lxcKeys()).to.not.include(ipA);
    expect(node.lxcKeys()).to.not.include(ipB);
    for (const deadline = Date.now() + 20_000; (await cepExists('alpha')) && Date.now() < deadline; ) await sleep(100);
    expect(await cepExists('alpha'), 'CiliumEndpoint of alpha after DEL').to.equal(false);
  });

  it('answers 0.3.1 and 0.4.0 configurations in their result format, also for a netns known only by a path outside /run/netns', async () => {
    const named = await node.addPod('epsilon');
    // A bind mount of the namespace elsewhere: the plugin enters it through nsenter, not `ip -n`.
    const bound = path.join(node.tmp, 'epsilon.netns');
    await writeFile(bound, '');
    await runCommand('bind-mount the pod netns', 'mount', ['--bind', named, bound]);
    try {
      for (const version of ['0.3.1', '0.4.0']) {
        const network = `v${version.replaceAll('.', '')}`;
        await node.writeConf({}, network, version);
        const r = JSON.parse(ok(await node.cnitool('add', bound, 'epsilon', { network }), `ADD ${version}`).stdout) as Result & { ips: { version?: string }[] };
        expect(r.cniVersion).to.equal(version);
        expect(r.ips[0]!.version).to.equal('4');
        expect((await getLink('eth0', { path: named })).mac).to.equal(r.interfaces[1]!.mac);
        ok(await node.cnitool('del', bound, 'epsilon', { network }), `DEL ${version}`);
        await nothingLeftOf('epsilon', named);
      }
    } finally {
      await runCommand('unmount the pod netns bind mount', 'umount', [bound]);
    }
  });

  it('a failed ADD leaves no veth, address or endpoint: agent rejects the endpoint, bad netns, bad netconf', async () => {
    const netns = await node.addPod('gamma');

    // The agent refuses the endpoint (a pod name that is not a Kubernetes name) after IPAM and veth.
    const rejected = await node.cnitool('add', netns, 'gamma', { args: `K8S_POD_NAMESPACE=${node.namespace};K8S_POD_NAME=Not_A_Name` });
    expect(rejected.code).to.not.equal(0);
    expect(rejected.stderr).to.contain('creating the endpoint (PUT /endpoint)').and.to.contain('k8s-pod-name');
    await nothingLeftOf('gamma', netns);

    // A netns path that does not exist: refused before anything is allocated.
    const missing = await node.cnitool('add', `/run/netns/${node.netnsPrefix}-absent`, 'gamma');
    expect(missing.code).to.not.equal(0);
    expect(missing.stderr).to.contain('invalid CNI_NETNS');
    // A file that is not a network namespace: fails building the veth, after IPAM.
    const notNetns = path.join(node.tmp, 'not-a-netns');
    await writeFile(notNetns, '');
    const bad = await node.cnitool('add', notNetns, 'gamma');
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr, bad.stderr).to.contain('setting up the pod interface failed');
    await nothingLeftOf('gamma', netns);
    expect((await listLinks()).map((l) => l.ifname)).to.not.include(hostIfnameFor(CniNode.containerIdOf(notNetns), 'eth0'));

    // A netconf the plugin refuses, naming the field.
    await node.writeConf({ mtu: 10 }, 'badconf');
    const badConf = await node.cnitool('add', netns, 'gamma', { network: 'badconf' });
    expect(badConf.code).to.not.equal(0);
    expect(badConf.stderr).to.contain('invalid network configuration').and.to.contain('field "mtu"');
    await nothingLeftOf('gamma', netns);

    // And the log says where ADD failed and that it was rolled back.
    const log = readFileSync(node.logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { message: string; level: string });
    expect(log.filter((l) => l.message === 'ADD failed and was rolled back').length).to.be.at.least(2);
  });

  it('DEL with the agent down succeeds and queues the deletion; draining it when the agent is back releases the IP', async () => {
    const netns = await node.addPod('delta');
    const res = JSON.parse(ok(await node.cnitool('add', netns, 'delta'), 'ADD delta').stdout) as Result;
    const ip = res.ips[0]!.address.split('/')[0]!;
    await node.stopAgent();
    expect(existsSync(node.socketPath), 'socket removed with the agent').to.equal(false);

    ok(await node.cnitool('del', netns, 'delta'), 'DEL delta with the agent down');
    const cid = CniNode.containerIdOf(netns);
    expect(readdirSync(node.queueDir)).to.deep.equal([`${cid}-eth0.delete`]);
    expect((await listLinks({ path: netns })).map((l) => l.ifname), 'pod interface deleted anyway').to.deep.equal(['lo']);

    // The agent's start drains the queue before it serves CNI ADDs.
    const daemon = await node.startAgent();
    await pollUntil('the agent to drain the delete queue', () => readdirSync(node.queueDir).length === 0, 20_000);
    expect(daemon.endpoints.list().filter((e) => e.podName === 'delta')).to.deep.equal([]);
    await nothingLeftOf('delta', netns);
    expect(node.lxcKeys()).to.not.include(ip);
  });

  it('DEL after the pod netns is gone succeeds and leaves nothing', async () => {
    const netns = await node.addPod('zeta');
    const r = JSON.parse(ok(await node.cnitool('add', netns, 'zeta'), 'ADD zeta').stdout) as Result;
    await deleteNetns(path.basename(netns));
    ok(await node.cnitool('del', netns, 'zeta'), 'DEL zeta without its netns');
    expect((await listLinks()).map((l) => l.ifname)).to.not.include(r.interfaces[0]!.name);
    expect(node.allocatedIPs()).to.deep.equal([]);
    expect(hasEndpoint('zeta')).to.equal(false);
  });

  it('200 ADD/DEL cycles leave 0 addresses, endpoints, veths and lxc map entries (and report where ADD time goes)', async () => {
    const netns = await node.addPod('cycle');
    const lxcBefore = node.lxcKeys().sort();
    const add: number[] = [];
    const del: number[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const a = ok(await node.cnitool('add', netns, 'cycle'), `ADD #${i}`);
      seen.add((JSON.parse(a.stdout) as Result).ips[0]!.address.split('/')[0]!);
      add.push(a.ms);
      del.push(ok(await node.cnitool('del', netns, 'cycle'), `DEL #${i}`).ms);
    }
    await nothingLeftOf('cycle', netns);
    expect(node.lxcKeys().sort()).to.deep.equal(lxcBefore);
    expect([...seen].filter((ip) => node.lxcKeys().includes(ip))).to.deep.equal([]);
    expect((await listLinks()).filter((l) => l.ifname === hostIfnameFor(CniNode.containerIdOf(netns), 'eth0'))).to.deep.equal([]);

    // The plugin's own step times for these ADDs, from its log.
    const adds = readFileSync(node.logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { message: string; k8sPodName?: string; durationsMs?: Record<string, number>; totalMs?: number })
      .filter((l) => l.message === 'CNI ADD done' && l.k8sPodName === 'cycle');
    expect(adds.length).to.equal(200);
    const steps = Object.keys(adds[0]!.durationsMs!);
    const split = Object.fromEntries(steps.map((s) => [s, percentile(adds.map((l) => l.durationsMs![s]!), 50)]));
    console.log(JSON.stringify({ cnitool_add_ms: { p50: percentile(add, 50), p99: percentile(add, 99) }, cnitool_del_ms: { p50: percentile(del, 50), p99: percentile(del, 99) }, plugin_add_p50_ms: { ...split, total: percentile(adds.map((l) => l.totalMs!), 50) } }));
  });
});
