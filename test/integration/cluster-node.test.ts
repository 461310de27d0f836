// `npm run cluster -- up --nodes 2` as real nodes (contracts9 §A): each node is a netns on the
// underlay bridge with its own containerd, kubelet and agent (containerd and kubelet in one mount
// namespace of the node), kubelet registers it under node-<i> with its underlay address, pods of
// the preloaded test image run on every node and `kubectl exec` reaches them, the world netns
// answers HTTP from a node; `down` (with pods running, after a node's kubelet was killed, or after
// the `up` itself was killed) leaves no process, netns, link, mount, cgroup, pin, shim socket,
// CNI result or changed sysctl behind. Its own state dir keeps a user's .local alone; the
// underlay's names are host-wide, so no other local cluster may run meanwhile.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { type ClusterInfo, type DaemonRecord, type NodeInfo } from '../../hack/cluster-daemons.js';
import { defaultBinDir, repoRoot } from '../../hack/controlplane/paths.js';
import { pidsMentioning, stopPid, type ProcessRecord } from '../../hack/controlplane/process.js';
import { cgroupHierarchies } from '../../hack/node/cgroups.js';
import { TESTBOX_IMAGE } from '../../hack/node/images.js';
import { AGENT_NOT_READY_TAINT } from '../../hack/node/kubelet.js';
import { nodeLayout } from '../../hack/node/layout.js';
import { mountsUnder } from '../../hack/node/mounts.js';
import { UNDERLAY, WORLD, underlayLeftovers } from '../../hack/node/underlay.js';
import { WORLD_BODY } from '../../hack/node/world.js';
import { runWithExitCode, type CommandResult } from '../envtest/command.js';

const NODES = ['node-1', 'node-2'];
const SYSCTLS = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops', 'net/ipv4/ip_forward'];
const readSysctls = (): string[] => SYSCTLS.map((s) => readFileSync(`/proc/sys/${s}`, 'utf8').trim());
const listDir = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

function nsOf(pid: number, kind: 'net' | 'mnt'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

interface RecordedState {
  components: Record<string, { process?: ProcessRecord } | undefined>;
}

describe('npm run cluster: real nodes in their own network namespaces', function () {
  this.timeout(300_000);
  let stateDir: string;
  let sysctlsBefore: string[];
  let shimSocketsBefore: string[];

  function cluster(...args: string[]): Promise<CommandResult> {
    const env = { ...process.env };
    delete env.CILIUM_TS_STATE_DIR;
    return runWithExitCode(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'hack', 'cluster.ts'), '--state-dir', stateDir, ...args], { cwd: repoRoot, env });
  }

  function kubectl(args: string[]): Promise<CommandResult> {
    return runWithExitCode(path.join(defaultBinDir(), 'kubectl'), ['--kubeconfig', path.join(stateDir, 'kubeconfig'), ...args]);
  }

  async function kubectlOk(args: string[]): Promise<string> {
    const r = await kubectl(args);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  }

  const nodeInfo = async (name: string): Promise<NodeInfo> => JSON.parse(await readFile(path.join(stateDir, 'nodes', name, 'node.json'), 'utf8')) as NodeInfo;
  const recorded = async (): Promise<RecordedState> => JSON.parse(await readFile(path.join(stateDir, 'cluster', 'state.json'), 'utf8')) as RecordedState;
  const cgroupDirs = (): string[] => NODES.flatMap((n) => cgroupHierarchies().map((h) => path.join(h.mountPoint, nodeLayout(stateDir, n).cgroupRoot)));

  function podPids(): number[] {
    const pids: number[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
      pids.push(...readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
    };
    for (const dir of cgroupDirs()) if (existsSync(dir)) walk(dir);
    return pids;
  }

  /** What `down` must have removed, whatever state the cluster was in. */
  async function expectNothingLeft(pods: number[]): Promise<void> {
    expect(pidsMentioning(stateDir), 'processes naming the state dir (containerd, shims, kubelet, agents, ...)').to.deep.equal([]);
    expect(pods.filter((pid) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')), 'pod processes').to.deep.equal([]);
    expect(underlayLeftovers(), 'bridge, node and world netns').to.deep.equal([]);
    expect(readdirSync('/sys/class/net').filter((l) => l.startsWith('cts-')), 'underlay links').to.deep.equal([]);
    expect(mountsUnder(stateDir), 'mounts under the state dir').to.deep.equal([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(stateDir)), 'mounts from the state dir anywhere').to.deep.equal([]);
    expect(cgroupDirs().filter(existsSync), 'node cgroups').to.deep.equal([]);
    for (const name of NODES) expect(existsSync(nodeLayout(stateDir, name).dir), `${name}'s dir`).to.equal(false);
    expect(listDir('/run/containerd/s').filter((s) => !shimSocketsBefore.includes(s)), 'shim sockets in /run/containerd/s').to.deep.equal([]);
    expect(readSysctls(), SYSCTLS.join(', ')).to.deep.equal(sysctlsBefore);
    expect(await readdir(stateDir)).to.deep.equal([]);
  }

  before(async function () {
    const other = underlayLeftovers();
    if (other.length > 0) throw new Error(`another local cluster runs (${other.join(', ')}); only one can hold the underlay`);
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

  describe('up, pods on every node, down after a kubelet was killed', function () {
    it('up registers every node under its name and underlay address, each in its own namespaces', async function () {
      const started = Date.now();
      const up = await cluster('up', '--nodes', String(NODES.length));
      expect(up.code, `${up.stdout}\n${up.stderr}`).to.equal(0);
      console.log(`      (cluster of ${NODES.length} nodes up in ${((Date.now() - started) / 1000).toFixed(1)}s)`);
      const info = JSON.parse(await readFile(path.join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfo;
      expect(info).to.deep.include({ nodes: NODES, routingMode: 'tunnel', clusterPodCIDR: '10.0.0.0/8', relay: '127.0.0.1:4245' });
      expect(info.underlay).to.deep.equal({ bridge: UNDERLAY.bridge, hostIP: UNDERLAY.hostIP, cidr: UNDERLAY.cidr });
      expect(info.world).to.deep.equal({ netns: WORLD.netns, ip: WORLD.ip, httpPort: WORLD.httpPort });
      const state = await recorded();
      const mntNamespaces = new Set<string>();
      for (const [i, name] of NODES.entries()) {
        const node = await nodeInfo(name);
        expect(node).to.include({ name, netns: `/run/netns/cts-node-${i + 1}`, nodeIP: `172.30.0.${11 + i}` });
        const ready = await kubectlOk(['get', 'node', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.addresses[?(@.type=="InternalIP")].address} {.spec.taints[*].key}']);
        expect(ready.trim()).to.equal(`True ${node.nodeIP}`);
        expect(ready).to.not.include(AGENT_NOT_READY_TAINT.key);
        const netns = `net:[${statSync(node.netns).ino}]`;
        const pids = ['containerd', 'kubelet', 'agent'].map((kind) => (state.components[`${kind}/${name}`] as DaemonRecord | undefined)?.process?.pid ?? 0);
        expect(pids.map((pid) => nsOf(pid, 'net')), `${name}'s containerd, kubelet and agent in ${node.netns}`).to.deep.equal([netns, netns, netns]);
        const [containerdMnt, kubeletMnt] = pids.map((pid) => nsOf(pid, 'mnt'));
        expect(containerdMnt, `${name}'s containerd and kubelet in one mount namespace`).to.equal(kubeletMnt).and.not.equal(nsOf(process.pid, 'mnt'));
        mntNamespaces.add(containerdMnt as string);
      }
      expect(mntNamespaces.size, 'a mount namespace per node').to.equal(NODES.length);
      const status = await cluster('status');
      expect(status.code, status.stdout).to.equal(0);
      for (const name of NODES) expect(status.stdout).to.match(new RegExp(`kubelet/${name}: Node ${name}: Ready=True`));
    });

    it('runs pods on every node, with addresses from that node\'s podCIDR, and kubectl exec into them', async function () {
      for (const name of NODES) {
        const manifest = JSON.parse(
          await kubectlOk(['create', 'deployment', `web-${name}`, `--image=${TESTBOX_IMAGE}`, '--replicas=1', '--dry-run=client', '-o', 'json', '--', 'httpd', '-f', '-p', '8080']),
        ) as { spec: { template: { spec: Record<string, unknown> } } };
        manifest.spec.template.spec.nodeSelector = { 'kubernetes.io/hostname': name };
        manifest.spec.template.spec.terminationGracePeriodSeconds = 1;
        const applied = await runWithExitCode(path.join(defaultBinDir(), 'kubectl'), ['--kubeconfig', path.join(stateDir, 'kubeconfig'), 'apply', '-f', '-'], { stdin: JSON.stringify(manifest) });
        expect(applied.code, applied.stderr).to.equal(0);
      }
      for (const name of NODES) await kubectlOk(['rollout', 'status', `deployment/web-${name}`, '--timeout=120s']);
      for (const name of NODES) {
        const pod = JSON.parse(await kubectlOk(['get', 'pods', '-l', `app=web-${name}`, '-o', 'json'])) as { items: { metadata: { name: string }; spec: { nodeName: string }; status: { podIP: string } }[] };
        const [p] = pod.items as [(typeof pod.items)[0]];
        expect(p.spec.nodeName).to.equal(name);
        const podCIDR = (await kubectlOk(['get', 'ciliumnode', name, '-o', 'jsonpath={.spec.ipam.podCIDRs[0]}'])).trim();
        const prefix = podCIDR.split('.').slice(0, 3).join('.');
        expect(p.status.podIP.startsWith(`${prefix}.`), `${p.status.podIP} in ${podCIDR}`).to.equal(true);
        const inPod = await kubectlOk(['exec', p.metadata.name, '--', 'sh', '-c', 'ip -4 -o addr show dev eth0; timeout 5 wget -qO- http://127.0.0.1:8080/']);
        expect(inPod).to.include(`inet ${p.status.podIP}/`);
        expect(inPod).to.include('cilium-ts testbox');
      }
    });

    it('reaches the world netns over the underlay from every node', async function () {
      for (const name of NODES) {
        const node = await nodeInfo(name);
        const r = await runWithExitCode('nsenter', [`--net=${node.netns}`, 'curl', '-sS', '-m', '5', `http://${WORLD.ip}:${WORLD.httpPort}/`]);
        expect(r, `${name} → world`).to.include({ code: 0, stdout: WORLD_BODY });
      }
    });

    it('down, after node-2\'s kubelet was killed and with pods running, leaves nothing behind', async function () {
      const pods = podPids();
      expect(pods, 'pod processes in the node cgroups').to.not.be.empty;
      const kubelet = (await recorded()).components['kubelet/node-2']?.process;
      expect(kubelet?.pid).to.be.a('number');
      process.kill(kubelet?.pid as number, 'SIGKILL');
      await sleep(200);
      const status = await cluster('status');
      expect(status.code, status.stdout).to.equal(1);
      expect(status.stdout).to.match(/kubelet\/node-2: kubelet: NOT running/);
      const started = Date.now();
      const down = await cluster('down');
      expect(down.code, `${down.stdout}\n${down.stderr}`).to.equal(0);
      console.log(`      (cluster down in ${((Date.now() - started) / 1000).toFixed(1)}s)`);
      await expectNothingLeft(pods);
    });
  });

  it('down also removes what an up killed while the kubelets started had made', async function () {
    const env = { ...process.env };
    delete env.CILIUM_TS_STATE_DIR;
    const up = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'hack', 'cluster.ts'), '--state-dir', stateDir, 'up', '--nodes', String(NODES.length)], { cwd: repoRoot, env, stdio: 'ignore' });
    const exited = once(up, 'exit');
    const kubelet = path.join(defaultBinDir(), 'kubelet');
    try {
      const deadline = Date.now() + 150_000;
      const cmdline = (pid: number): string => (existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '');
      while (!pidsMentioning(stateDir).some((pid) => cmdline(pid).includes(kubelet))) {
        if (up.exitCode !== null || Date.now() > deadline) throw new Error(`up exited (${up.exitCode}) or took too long before any kubelet ran`);
        await sleep(50);
      }
    } finally {
      up.kill('SIGKILL');
      await exited;
    }
    expect(underlayLeftovers(), 'the killed up left its underlay').to.not.be.empty;
    const down = await cluster('down');
    expect(down.code, `${down.stdout}\n${down.stderr}`).to.equal(0);
    await expectNothingLeft([]);
  });
});
