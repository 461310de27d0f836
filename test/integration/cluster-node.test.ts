// `npm run cluster -- up` as a real node: kubelet registers the host, containerd runs pods of the
// preloaded test image networked by the agent's CNI configuration, `kubectl exec` reaches them,
// and `down` (with pods still running) leaves no process, mount, cgroup, netns, veth, pin, shim
// socket, CNI result or changed sysctl behind. Its own state dir keeps a user's .local alone; the
// kubelet ports are host-wide, so no other local cluster may run meanwhile.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { BlockList } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CILIUM_CONFLIST, hostNodeName, type NodeInfo } from '../../hack/cluster-daemons.js';
import { defaultBinDir, repoRoot } from '../../hack/controlplane/paths.js';
import { pidsMentioning, stopPid } from '../../hack/controlplane/process.js';
import { cgroupHierarchies } from '../../hack/node/cgroups.js';
import { TESTBOX_IMAGE } from '../../hack/node/images.js';
import { AGENT_NOT_READY_TAINT } from '../../hack/node/kubelet.js';
import { nodeLayout } from '../../hack/node/layout.js';
import { mountsUnder } from '../../hack/node/mounts.js';
import { runWithExitCode, type CommandResult } from '../envtest/command.js';

const SYSCTLS = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops', 'net/ipv4/ip_forward'];
const readSysctls = (): string[] => SYSCTLS.map((s) => readFileSync(`/proc/sys/${s}`, 'utf8').trim());
const listDir = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

function netnsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

describe('npm run cluster: a real node', function () {
  this.timeout(180_000);
  let stateDir: string;
  let node: NodeInfo;
  let sysctlsBefore: string[];
  let shimSocketsBefore: string[];

  function cluster(command: string): Promise<CommandResult> {
    const env = { ...process.env };
    delete env.CILIUM_TS_STATE_DIR;
    return runWithExitCode(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'hack', 'cluster.ts'), '--state-dir', stateDir, command], { cwd: repoRoot, env });
  }

  function kubectl(args: string[]): Promise<CommandResult> {
    return runWithExitCode(path.join(defaultBinDir(), 'kubectl'), ['--kubeconfig', path.join(stateDir, 'kubeconfig'), ...args]);
  }

  async function kubectlOk(args: string[]): Promise<string> {
    const r = await kubectl(args);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  }

  const cgroupDirs = (): string[] => cgroupHierarchies().map((h) => path.join(h.mountPoint, nodeLayout(stateDir, hostNodeName()).cgroupRoot));

  before(async function () {
    const other = await runWithExitCode(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'hack', 'cluster.ts'), 'status'], { cwd: repoRoot });
    if (other.code !== 3) throw new Error(`another local cluster runs (npm run cluster -- status: exit ${other.code}); only one can use the kubelet ports`);
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-node-test-'));
    sysctlsBefore = readSysctls();
    shimSocketsBefore = listDir('/run/containerd/s');
  });

  after(async function () {
    this.timeout(120_000);
    if (existsSync(path.join(stateDir, 'cluster', 'state.json'))) await cluster('down');
    for (const pid of pidsMentioning(stateDir)) await stopPid(pid, `leftover of ${stateDir}`);
    await rm(stateDir, { recursive: true, force: true });
  });

  it('up registers the node, which goes Ready once the agent wrote its CNI configuration', async function () {
    const started = Date.now();
    const up = await cluster('up');
    expect(up.code, `${up.stdout}\n${up.stderr}`).to.equal(0);
    console.log(`      (cluster up in ${((Date.now() - started) / 1000).toFixed(1)}s)`);
    node = JSON.parse(await readFile(path.join(stateDir, 'nodes', hostNodeName(), 'node.json'), 'utf8')) as NodeInfo;
    expect(node.name).to.equal(hostNodeName());
    for (const p of [node.socket, node.containerdSocket]) expect(existsSync(p), p).to.equal(true);
    const conf = JSON.parse(await readFile(path.join(node.cniConfDir, CILIUM_CONFLIST), 'utf8')) as { plugins: { type: string }[] };
    expect(conf.plugins.map((p) => p.type)).to.deep.equal(['cilium-cni']);
    const ready = await kubectlOk(['get', 'node', node.name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    expect(ready).to.equal('True');
    // The agent lifts the taint kubelet registered the node with once it is ready (as upstream).
    const taints = await kubectlOk(['get', 'node', node.name, '-o', 'jsonpath={.spec.taints[*].key}']);
    expect(taints).to.not.include(AGENT_NOT_READY_TAINT.key);
    const status = await cluster('status');
    expect(status.code, status.stdout).to.equal(0);
    for (const part of [/containerd: .*ctr version: server/s, /kubelet: Node \S+: Ready=True/, /cilium\.sock GET \/v1\/healthz: HTTP 200/, /kube-scheduler: running/]) {
      expect(status.stdout).to.match(part);
    }
  });

  it('runs a deployment of the test image with addresses from the node\'s podCIDR, and kubectl exec into it', async function () {
    await kubectlOk(['create', 'deployment', 'web', `--image=${TESTBOX_IMAGE}`, '--replicas=2', '--', 'httpd', '-f', '-p', '8080']);
    const started = Date.now();
    await kubectlOk(['rollout', 'status', 'deployment/web', '--timeout=90s']);
    console.log(`      (2 pods Running in ${((Date.now() - started) / 1000).toFixed(1)}s)`);
    const pods = JSON.parse(await kubectlOk(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as { items: { metadata: { name: string }; status: { podIP: string; phase: string } }[] };
    expect(pods.items).to.have.length(2);
    const podCIDR = (await kubectlOk(['get', 'ciliumnode', node.name, '-o', 'jsonpath={.spec.ipam.podCIDRs[0]}'])).trim();
    const [net, bits] = podCIDR.split('/') as [string, string];
    const cidr = new BlockList();
    cidr.addSubnet(net, Number(bits));
    for (const pod of pods.items) expect(cidr.check(pod.status.podIP), `${pod.metadata.name} ${pod.status.podIP} in ${podCIDR}`).to.equal(true);
    const [a, b] = pods.items as [(typeof pods.items)[0], (typeof pods.items)[0]];
    expect(a.status.podIP).to.not.equal(b.status.podIP);
    const inPod = await kubectlOk(['exec', a.metadata.name, '--', 'sh', '-c', 'ip -4 -o addr show dev eth0; timeout 5 wget -qO- http://127.0.0.1:8080/']);
    expect(inPod).to.include(`inet ${a.status.podIP}/`);
    expect(inPod).to.include('cilium-ts testbox');
  });

  it('down with pods running leaves no process, mount, cgroup, netns, veth, pin, shim socket or changed sysctl', async function () {
    const layout = nodeLayout(stateDir, hostNodeName());
    // What the pods are made of on the host: their processes and the host ends of their veths.
    const podPids = cgroupDirs().flatMap((dir) => {
      const pids: number[] = [];
      const walk = (d: string): void => {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
        pids.push(...readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
      };
      if (existsSync(dir)) walk(dir);
      return pids;
    });
    expect(podPids, 'pod processes in the node cgroup').to.not.be.empty;
    const podNetns = new Set(podPids.map(netnsOf).filter((ns) => ns !== undefined && ns !== netnsOf(process.pid)));
    expect(podNetns.size, 'pod network namespaces').to.be.at.least(2);
    expect(mountsUnder(stateDir).filter((m) => m.includes('netns')), 'pod netns files under the containerd state dir').to.not.be.empty;
    const hostIfindexes = (await kubectlOk(['get', 'pods', '-l', 'app=web', '-o', 'name'])).trim().split('\n');
    const peers: string[] = [];
    for (const pod of hostIfindexes) peers.push((await kubectlOk(['exec', pod.replace('pod/', ''), '--', 'cat', '/sys/class/net/eth0/iflink'])).trim());
    const sandboxIds = (await runWithExitCode(path.join(defaultBinDir(), 'crictl'), ['--runtime-endpoint', `unix://${node.containerdSocket}`, 'pods', '-q'])).stdout.trim().split('\n');
    expect(sandboxIds).to.have.length.of.at.least(2);

    const started = Date.now();
    const down = await cluster('down');
    expect(down.code, `${down.stdout}\n${down.stderr}`).to.equal(0);
    console.log(`      (cluster down in ${((Date.now() - started) / 1000).toFixed(1)}s)`);

    expect(pidsMentioning(stateDir), 'processes naming the state dir (containerd, shims, kubelet, agent, ...)').to.deep.equal([]);
    expect(podPids.filter((pid) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')), 'pod processes').to.deep.equal([]);
    expect(mountsUnder(stateDir), 'mounts under the state dir').to.deep.equal([]);
    const hardCoded = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(stateDir));
    expect(hardCoded, 'bind mounts from the state dir anywhere').to.deep.equal([]);
    expect(cgroupDirs().filter(existsSync), 'node cgroups').to.deep.equal([]);
    const alive = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => netnsOf(Number(p)));
    expect(alive.filter((ns) => ns !== undefined && podNetns.has(ns)), 'processes still in a pod\'s network namespace').to.deep.equal([]);
    const links = new Set(readdirSync('/sys/class/net').map((l) => readFileSync(`/sys/class/net/${l}/ifindex`, 'utf8').trim()));
    expect(peers.filter((i) => links.has(i)), 'host ends of the pods\' veths').to.deep.equal([]);
    expect(existsSync(node.bpfPinDir), `pins in ${node.bpfPinDir}`).to.equal(false);
    expect(listDir('/run/containerd/s').filter((s) => !shimSocketsBefore.includes(s)), 'shim sockets in /run/containerd/s').to.deep.equal([]);
    expect(listDir('/var/lib/cni/results').filter((f) => sandboxIds.some((id) => f.includes(id))), 'CNI results of the pods').to.deep.equal([]);
    expect(readSysctls(), SYSCTLS.join(', ')).to.deep.equal(sysctlsBefore);
    expect(existsSync(layout.dir)).to.equal(false);
    expect(await readdir(stateDir)).to.deep.equal([]);
  });
});
