// The test control plane harness (test/envtest) against the real etcd and kube-apiserver.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { binaryPath, controlPlaneBinaries, type ControlPlaneBinary } from '../../hack/controlplane/binaries.js';
import { processesOf, startControlPlane, type ControlPlaneRecord, type RunningControlPlane } from '../../hack/controlplane/controlplane.js';
import { readCrdDir } from '../../hack/controlplane/crds.js';
import type * as envtest from '../envtest/index.js';
import { kubectl, sharedControlPlane, testNamespace } from '../envtest/index.js';
import { crdDir, defaultBinDir, repoRoot } from '../../hack/controlplane/paths.js';
import { isRunning, pidsMentioning, stopProcess } from '../../hack/controlplane/process.js';
import { rejection } from '../support/rejection.js';

const fixtureCrdDir = path.join(repoRoot, 'test', 'envtest', 'testdata');

describe('envtest control plane', function () {
  this.timeout(120_000);

  describe('a started control plane', function () {
    let cp: RunningControlPlane;

    before(async function () {
      cp = await startControlPlane({ crdDir: fixtureCrdDir });
    });

    after(async function () {
      await cp?.stop();
    });

    it('answers kubectl through its kubeconfig as an admin in system:masters', async function () {
      const ready = await kubectl(cp, ['get', '--raw', '/readyz']);
      expect(ready).to.include({ code: 0, stdout: 'ok' });
      const whoami = await kubectl(cp, ['auth', 'whoami', '-o', 'json']);
      expect(whoami.code, whoami.stderr).to.equal(0);
      const review = JSON.parse(whoami.stdout) as { status: { userInfo: { groups: string[] } } };
      expect(review.status.userInfo.groups).to.include('system:masters');
    });

    it('authorizes with RBAC: an unknown user may not read pods', async function () {
      const admin = await kubectl(cp, ['auth', 'can-i', 'get', 'pods']);
      expect(admin).to.include({ code: 0, stdout: 'yes\n' });
      const stranger = await kubectl(cp, ['auth', 'can-i', 'get', 'pods', '--as=cilium-ts-stranger']);
      expect(stranger).to.include({ code: 1, stdout: 'no\n' });
    });

    it('serves client-node with the loaded KubeConfig', async function () {
      const namespaces = await cp.kubeConfig.makeApiClient(CoreV1Api).listNamespace();
      expect(namespaces.items.map((n) => n.metadata?.name)).to.include.members(['default', 'kube-system']);
    });

    it('installs the CRDs of its directory, Established and served in discovery', async function () {
      expect(cp.record.crds).to.deep.equal(['widgets.envtest.cilium-ts.io']);
      const established = await kubectl(cp, [
        'get', 'crd', 'widgets.envtest.cilium-ts.io', '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}',
      ]);
      expect(established).to.include({ code: 0, stdout: 'True' });
      const resources = await kubectl(cp, ['api-resources', '--api-group=envtest.cilium-ts.io', '-o', 'name']);
      expect(resources).to.include({ code: 0, stdout: 'widgets.envtest.cilium-ts.io\n' });
    });

    it('gives each test a fresh namespace and deletes it with its objects', async function () {
      const a = await testNamespace(cp);
      const b = await testNamespace(cp);
      try {
        expect(a.name).to.not.equal(b.name);
        const widget = `apiVersion: envtest.cilium-ts.io/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n`;
        expect(await kubectl(cp, ['-n', a.name, 'apply', '-f', '-'], { stdin: widget })).to.include({ code: 0 });
        expect(await kubectl(cp, ['-n', a.name, 'create', 'configmap', 'c1'])).to.include({ code: 0 });
        // Bound to a node, so deleted gracefully unless the cleanup says otherwise; no kubelet runs.
        const pod = `apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec: {nodeName: no-such-node, containers: [{name: c, image: none}]}\n`;
        expect(await kubectl(cp, ['-n', a.name, 'apply', '-f', '-'], { stdin: pod })).to.include({ code: 0 });
      } finally {
        await b.cleanup();
        await a.cleanup();
      }
      for (const ns of [a.name, b.name]) {
        const get = await kubectl(cp, ['get', 'namespace', ns]);
        expect(get.code).to.equal(1);
        expect(get.stderr).to.include('NotFound');
      }
      const widgets = (await cp.kubeConfig
        .makeApiClient(CustomObjectsApi)
        .listClusterCustomObject({ group: 'envtest.cilium-ts.io', version: 'v1', plural: 'widgets' })) as { items: unknown[] };
      expect(widgets.items).to.deep.equal([]);
      const configmaps = await kubectl(cp, ['get', 'configmaps', '-A', '-o', 'name', '--field-selector', `metadata.namespace=${a.name}`]);
      expect(configmaps).to.include({ code: 0, stdout: '' });
      const pods = await kubectl(cp, ['get', 'pods', '-A', '-o', 'name', '--field-selector', `metadata.namespace=${a.name}`]);
      expect(pods).to.include({ code: 0, stdout: '' });
    });

    it('returns a failing kubectl command as its exit code and stderr', async function () {
      const result = await kubectl(cp, ['get', 'nosuchkinds']);
      expect(result.code).to.equal(1);
      expect(result.stderr).to.include('nosuchkinds');
    });

    it('stops etcd and kube-apiserver and removes its files, and stop is idempotent', async function () {
      const processes = processesOf(cp.record);
      expect(processes).to.have.length(2);
      expect(processes.every(isRunning)).to.equal(true);
      await cp.stop();
      expect(processes.some(isRunning)).to.equal(false);
      expect(existsSync(cp.record.workDir)).to.equal(false);
      expect(pidsMentioning(cp.record.workDir)).to.deep.equal([]);
      await cp.stop();
    });
  });

  describe('the shared control plane', function () {
    it('is one per run, with every CRD of crds/cilium.io/v2 Established and served', async function () {
      const cp = await sharedControlPlane();
      expect(await sharedControlPlane()).to.equal(cp);
      const sources = await readCrdDir(crdDir);
      expect(sources, `CRDs in ${crdDir}`).to.not.be.empty;
      const served = await kubectl(cp, ['api-resources', '--api-group=cilium.io', '-o', 'name']);
      expect(served.code, served.stderr).to.equal(0);
      for (const { crd } of sources) {
        const name = crd.metadata?.name ?? '';
        const established = await kubectl(cp, ['get', 'crd', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
        expect(established, name).to.include({ code: 0, stdout: 'True' });
        expect(served.stdout.split('\n'), name).to.include(`${crd.spec.names.plural}.${crd.spec.group}`);
      }
    });

    it('is one per process for every copy of the module, and any copy stops it', async function () {
      // mocha loads a test file with require() or, failing that, import(); each loader keeps its own
      // module copies. A query string makes the loader create another copy the same way.
      const copySpecifier = '../envtest/index.js?copy';
      const copy = (await import(copySpecifier)) as typeof envtest;
      expect(copy.sharedControlPlane, 'a second module instance').to.not.equal(sharedControlPlane);
      const cp = await sharedControlPlane();
      const fromCopy = await copy.sharedControlPlane();
      try {
        expect(fromCopy).to.equal(cp);
      } finally {
        if (fromCopy !== cp) await fromCopy.stop();
      }
      // As the root hook does from whichever copy it loaded.
      const processes = processesOf(cp.record);
      await copy.stopSharedControlPlane();
      expect(processes.some(isRunning)).to.equal(false);
      const restarted = await sharedControlPlane();
      expect(restarted).to.not.equal(cp);
      expect(await kubectl(restarted, ['get', '--raw', '/readyz'])).to.include({ code: 0, stdout: 'ok' });
    });
  });

  describe('failures', function () {
    let dir: string;

    beforeEach(async function () {
      dir = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-envtest-failure-'));
    });

    afterEach(async function () {
      await rm(dir, { recursive: true, force: true });
    });

    // A bin dir with the given shell scripts in place of some binaries and the real ones otherwise.
    async function binDirWith(scripts: Partial<Record<ControlPlaneBinary, string>>): Promise<string> {
      const binDir = path.join(dir, 'bin');
      await rm(binDir, { recursive: true, force: true });
      await mkdir(binDir);
      for (const name of controlPlaneBinaries) {
        const script = scripts[name];
        if (script === undefined) {
          await symlink(binaryPath(defaultBinDir(), name), binaryPath(binDir, name));
        } else {
          await writeFile(binaryPath(binDir, name), `#!/bin/sh\n${script}\n`);
          await chmod(binaryPath(binDir, name), 0o755);
        }
      }
      return binDir;
    }

    const binDirWithApiServer = (script: string) => binDirWith({ 'kube-apiserver': script });

    // The real binary, but bound to a port this test holds: Go's flag parsing keeps the last value.
    function onTakenPort(name: ControlPlaneBinary, portFlag: string): string {
      return `exec ${binaryPath(defaultBinDir(), name)} "$@" ${portFlag}`;
    }

    async function holdPort(): Promise<net.Server> {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return server;
    }

    function portOf(server: net.Server): number {
      return (server.address() as net.AddressInfo).port;
    }

    it('starts on fresh ports when another process took etcd\'s port', async function () {
      const taken = await holdPort();
      const lostOnce = path.join(dir, 'etcd-lost-its-port');
      const etcd = binaryPath(defaultBinDir(), 'etcd');
      // The first real start (not the --help probe) meets the taken port; later ones run plainly.
      const binDir = await binDirWith({
        etcd: `if [ "$1" != --help ] && [ ! -e ${lostOnce} ]; then touch ${lostOnce}; ${onTakenPort('etcd', `--listen-client-urls=http://127.0.0.1:${portOf(taken)}`)}; fi\nexec ${etcd} "$@"`,
      });
      let cp: RunningControlPlane | undefined;
      try {
        cp = await startControlPlane({ binDir, workDir: path.join(dir, 'work'), crdDir: fixtureCrdDir });
        expect(existsSync(lostOnce), 'first etcd start met the taken port').to.equal(true);
        expect(cp.record.etcd?.clientUrl).to.not.include(`:${portOf(taken)}`);
        expect(await kubectl(cp, ['get', '--raw', '/readyz'])).to.include({ code: 0, stdout: 'ok' });
      } finally {
        await cp?.stop();
        taken.close();
      }
    });

    it('gives up after a bounded number of ports lost, naming the cause, and leaves nothing behind', async function () {
      const taken = await holdPort();
      const binDir = await binDirWith({ 'kube-apiserver': onTakenPort('kube-apiserver', `--secure-port=${portOf(taken)}`) });
      const workDir = path.join(dir, 'work');
      try {
        const err = await rejection(startControlPlane({ binDir, workDir, crdDir: fixtureCrdDir }));
        expect(err.message).to.match(/^control plane: another process took a port before etcd or kube-apiserver bound it, 5 times in a row/);
        expect(err.message).to.include(`127.0.0.1:${portOf(taken)}: bind: address already in use`);
        expect(existsSync(workDir)).to.equal(false);
        expect(pidsMentioning(workDir)).to.deep.equal([]);
      } finally {
        taken.close();
      }
    });

    it('names the missing binaries and the setup command', async function () {
      const err = await rejection(startControlPlane({ binDir: dir, crdDir: fixtureCrdDir }));
      expect(err.message).to.include('etcd, kube-apiserver, kubectl not found');
      expect(err.message).to.include(dir);
      expect(err.message).to.include('npm run setup');
    });

    it('shows the log tail of a kube-apiserver that exits, and leaves nothing behind', async function () {
      const binDir = await binDirWithApiServer('echo "cilium-ts-test: cannot bind the secure port" >&2; exit 1');
      const workDir = path.join(dir, 'work');
      const err = await rejection(startControlPlane({ binDir, workDir, crdDir: fixtureCrdDir }));
      expect(err.message).to.match(/^kube-apiserver exited before https:\/\/127\.0\.0\.1:\d+\/readyz became ready/);
      expect(err.message).to.include('cilium-ts-test: cannot bind the secure port');
      expect(existsSync(workDir)).to.equal(false);
      expect(pidsMentioning(workDir)).to.deep.equal([]);
    });

    it('shows the log tail of a kube-apiserver that never gets ready, and stops it', async function () {
      // The shell stays (no exec), so its command line, which names workDir, shows if it is left over.
      const binDir = await binDirWithApiServer('echo "cilium-ts-test: waiting forever"; while :; do sleep 0.1; done');
      const workDir = path.join(dir, 'work');
      const err = await rejection(startControlPlane({ binDir, workDir, crdDir: fixtureCrdDir, readyTimeoutMs: 1_000 }));
      expect(err.message).to.match(/^kube-apiserver not ready within 1s at https:\/\/127\.0\.0\.1:\d+\/readyz/);
      expect(err.message).to.include('cilium-ts-test: waiting forever');
      expect(existsSync(workDir)).to.equal(false);
      expect(pidsMentioning(workDir)).to.deep.equal([]);
    });
  });

  describe('when the test process dies', function () {
    let child: ChildProcess | undefined;
    let record: ControlPlaneRecord | undefined;

    afterEach(async function () {
      child?.kill('SIGKILL');
      if (record) {
        for (const p of processesOf(record)) await stopProcess(p, 1_000);
        await rm(record.workDir, { recursive: true, force: true });
      }
      child = undefined;
      record = undefined;
    });

    async function startHolder(): Promise<{ child: ChildProcess; record: ControlPlaneRecord }> {
      const script = path.join(repoRoot, 'test', 'envtest', 'testdata', 'hold-control-plane.ts');
      const proc = spawn(process.execPath, ['--import', 'tsx', script, fixtureCrdDir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
      child = proc;
      let out = '';
      proc.stdout.setEncoding('utf8');
      for await (const chunk of proc.stdout as AsyncIterable<string>) {
        out += chunk;
        if (out.includes('\n')) break;
      }
      if (!out.includes('\n')) throw new Error(`hold-control-plane exited without printing its record (exit ${proc.exitCode})`);
      record = JSON.parse(out.slice(0, out.indexOf('\n'))) as ControlPlaneRecord;
      expect(processesOf(record).every(isRunning)).to.equal(true);
      return { child: proc, record };
    }

    it('stops the control plane and removes its files on SIGTERM', async function () {
      const held = await startHolder();
      const exited = once(held.child, 'exit');
      held.child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).to.equal(128 + os.constants.signals.SIGTERM);
      expect(processesOf(held.record).some(isRunning)).to.equal(false);
      expect(existsSync(held.record.workDir)).to.equal(false);
    });

    it('has the kernel kill etcd and kube-apiserver on SIGKILL', async function () {
      const held = await startHolder();
      const exited = once(held.child, 'exit');
      held.child.kill('SIGKILL');
      await exited;
      const processes = processesOf(held.record);
      // The parent-death signal is delivered as the parent exits; give the kernel a moment.
      for (let i = 0; i < 100 && processes.some(isRunning); i++) await sleep(50);
      expect(processes.some(isRunning)).to.equal(false);
    });
  });
});
