// `npm run cluster -- up|status|down` end to end, in its own state dir so a user's running cluster
// is left alone.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { binaryPath, serverBinaryPaths } from '../../hack/controlplane/binaries.js';
import { runWithExitCode, type CommandResult } from '../envtest/command.js';
import { processesOf, type ControlPlaneRecord } from '../../hack/controlplane/controlplane.js';
import { readCrdDir } from '../../hack/controlplane/crds.js';
import { crdDir, defaultBinDir, repoRoot } from '../../hack/controlplane/paths.js';
import { pollUntil } from '../envtest/poll.js';
import { isRunning, pidsMentioning, stopPid, type ProcessRecord } from '../../hack/controlplane/process.js';
import { cgroupHierarchies } from '../../hack/node/cgroups.js';
import { nodeLayout } from '../../hack/node/layout.js';
import { mountsUnder } from '../../hack/node/mounts.js';
import { kubeControllerProcesses, type KubeControllersRecord } from '../../hack/controlplane/kube-controllers.js';

// Besides the control plane's: each component's process, and the world's httpd.
interface RecordedState {
  components: Record<string, { process?: ProcessRecord; httpd?: ProcessRecord }> & {
    'control-plane'?: ControlPlaneRecord;
    'kube-controllers'?: KubeControllersRecord;
  };
}

describe('npm run cluster', function () {
  this.timeout(120_000);
  let stateDir: string;

  const servers = serverBinaryPaths(defaultBinDir());

  function clusterArgs(command: string): string[] {
    return ['--import', 'tsx', path.join(repoRoot, 'hack', 'cluster.ts'), '--state-dir', stateDir, command];
  }

  function cluster(command: string): Promise<CommandResult> {
    const env = { ...process.env };
    delete env.CILIUM_TS_STATE_DIR;
    return runWithExitCode(process.execPath, clusterArgs(command), { cwd: repoRoot, env });
  }

  async function recordedProcesses(): Promise<ProcessRecord[]> {
    const state = JSON.parse(await readFile(path.join(stateDir, 'cluster', 'state.json'), 'utf8')) as RecordedState;
    const record = state.components['control-plane'];
    if (record === undefined) throw new Error(`no control-plane in ${stateDir}/cluster/state.json`);
    const controllers = state.components['kube-controllers'];
    const others = Object.values(state.components as Record<string, { process?: ProcessRecord; httpd?: ProcessRecord }>).flatMap((c) =>
      [c.process, c.httpd].flatMap((p) => (p === undefined ? [] : [p])),
    );
    return [...processesOf(record), ...(controllers ? kubeControllerProcesses(controllers) : []), ...others];
  }

  function kubectl(args: string[]): Promise<CommandResult> {
    return runWithExitCode(path.join(stateDir, 'bin', 'kubectl'), ['--kubeconfig', path.join(stateDir, 'kubeconfig'), ...args]);
  }

  before(async function () {
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-cluster-test-'));
  });

  after(async function () {
    // A failed test may leave the detached processes running; down, then make sure.
    if (existsSync(path.join(stateDir, 'cluster', 'state.json'))) await cluster('down');
    for (const pid of pidsMentioning(stateDir)) await stopPid(pid, `leftover of ${stateDir}`);
    await rm(stateDir, { recursive: true, force: true });
  });

  it('up starts the control plane in the background and prints how to use it', async function () {
    const up = await cluster('up');
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.include(`export KUBECONFIG=${stateDir}/kubeconfig`);
    expect(up.stdout).to.include(`${stateDir}/bin/kubectl get nodes`);
    // The command has exited; what it started keeps running.
    const processes = await recordedProcesses();
    expect(processes.map((p) => p.name)).to.include.members(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'cilium-operator']);
    for (const perNode of ['cilium-agent-', 'containerd-', 'kubelet-']) expect(processes.filter((p) => p.name.startsWith(perNode)), perNode).to.have.length(2);
    expect(processes.every(isRunning)).to.equal(true);
    const crds = await kubectl(['get', 'crds', '-o', 'name']);
    expect(crds.code, crds.stderr).to.equal(0);
    const expected = (await readCrdDir(crdDir)).map(({ crd }) => `customresourcedefinition.apiextensions.k8s.io/${crd.metadata?.name}`);
    expect(crds.stdout.trim().split('\n')).to.have.members(expected);
  });

  it('up again says it is up and starts nothing new', async function () {
    const before = await recordedProcesses();
    const up = await cluster('up');
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.include('cluster is already up');
    expect(await recordedProcesses()).to.deep.equal(before);
    expect(pidsMentioning(stateDir).filter((pid) => !before.some((p) => p.pid === pid)), 'unrecorded processes').to.deep.equal([]);
  });

  it('status names the running processes and the apiserver readiness', async function () {
    const status = await cluster('status');
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(/etcd: running \(pid \d+/);
    expect(status.stdout).to.match(/kube-apiserver: running \(pid \d+/);
    expect(status.stdout).to.match(/readyz: HTTP 200 ok/);
    expect(status.stdout).to.match(/operator: .*healthz: HTTP 200/);
    expect(status.stdout).to.match(/agent\/node-1: .*healthz: HTTP 200/);
  });

  it('status reports a dead apiserver, and up replaces the broken cluster', async function () {
    const [etcd, apiserver] = await recordedProcesses().then((ps) => ['etcd', 'kube-apiserver'].map((n) => ps.find((p) => p.name === n)));
    if (etcd === undefined || apiserver === undefined) throw new Error('state lacks etcd or kube-apiserver');
    process.kill(apiserver.pid, 'SIGKILL');
    await pollUntil(`killed kube-apiserver pid ${apiserver.pid} to exit`, () => !isRunning(apiserver), 10_000);
    const status = await cluster('status');
    expect(status.code).to.equal(1);
    expect(status.stdout).to.include('cluster is NOT healthy');
    expect(status.stdout).to.match(/kube-apiserver: NOT running \(pid \d+/);
    const up = await cluster('up');
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.include('not healthy; stopping what is left first');
    expect(isRunning(etcd)).to.equal(false);
    expect((await recordedProcesses()).every(isRunning)).to.equal(true);
    expect(await kubectl(['get', '--raw', '/readyz'])).to.include({ code: 0, stdout: 'ok' });
  });

  it('down stops everything and leaves no files', async function () {
    const processes = await recordedProcesses();
    const down = await cluster('down');
    expect(down.code, down.stderr).to.equal(0);
    expect(processes.some(isRunning)).to.equal(false);
    expect(pidsMentioning(stateDir)).to.deep.equal([]);
    expect(await readdir(stateDir)).to.deep.equal([]);
    const status = await cluster('status');
    expect(status.code).to.equal(3);
    expect(status.stdout).to.include('cluster is not running');
  });

  /** Runs `up` and kills it (SIGKILL) as soon as a process of `binary` runs for this state dir. */
  async function killUpOnceRunning(binary: string, timeoutMs: number): Promise<void> {
    const up = spawn(process.execPath, clusterArgs('up'), { cwd: repoRoot, stdio: 'ignore' });
    const exited = once(up, 'exit');
    try {
      for (const deadline = Date.now() + timeoutMs; pidsMentioning(stateDir, [binary]).length === 0; ) {
        if (Date.now() > deadline) throw new Error(`cluster up started no ${binary} within ${timeoutMs / 1000}s`);
        if (up.exitCode !== null) throw new Error(`cluster up exited (${up.exitCode}) before ${binary} ran`);
        await sleep(50);
      }
    } finally {
      up.kill('SIGKILL');
      await exited;
    }
  }

  it('down also stops what an up killed half-way had started', async function () {
    // Killed once etcd runs: `up` is then still waiting for kube-apiserver, nothing recorded.
    await killUpOnceRunning(binaryPath(defaultBinDir(), 'etcd'), 60_000);
    expect(pidsMentioning(stateDir, servers)).to.not.be.empty;
    const down = await cluster('down');
    expect(down.code, down.stderr).to.equal(0);
    expect(pidsMentioning(stateDir)).to.deep.equal([]);
    expect(await readdir(stateDir)).to.deep.equal([]);
  });

  it('down also cleans up a node whose up was killed while kubelet started', async function () {
    await killUpOnceRunning(path.join(defaultBinDir(), 'kubelet'), 100_000);
    const layout = nodeLayout(stateDir, 'node-1');
    expect(existsSync('/run/netns/cts-node-1'), 'node-1\'s netns').to.equal(true);
    const down = await cluster('down');
    expect(down.code, down.stderr).to.equal(0);
    expect(pidsMentioning(stateDir)).to.deep.equal([]);
    expect(mountsUnder(stateDir)).to.deep.equal([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).to.not.include(stateDir);
    expect(cgroupHierarchies().map((h) => path.join(h.mountPoint, layout.cgroupRoot)).filter(existsSync)).to.deep.equal([]);
    expect(await readdir(stateDir)).to.deep.equal([]);
  });
});
