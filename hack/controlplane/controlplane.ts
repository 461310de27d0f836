// Starts and stops one control plane: etcd + kube-apiserver on free loopback ports, certificates,
// the CRDs installed and served, and a kubeconfig for the admin user.
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startApiServer, type ApiServerRecord, type ExternalServing } from './apiserver.js';
import { assertBinaries, binaryPath } from './binaries.js';
import { registerCleanup } from './cleanup.js';
import { installCrds } from './crds.js';
import { startEtcd, type EtcdRecord } from './etcd.js';
import { writeKubeconfig } from './kubeconfig.js';
import { crdDir as defaultCrdDir, defaultBinDir } from './paths.js';
import { generatePki, type Pki } from './pki.js';
import { freePorts } from './ports.js';
import { killNow, stopProcess, type ProcessRecord } from './process.js';
import { AddressInUseError } from './readiness.js';

export interface ControlPlane {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  binDir: string;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  binDir?: string;
  crdDir?: string;
  // Created if missing and removed on stop; a fresh temp dir when not given.
  workDir?: string;
  // Defaults to <workDir>/kubeconfig; removed on stop.
  kubeconfigPath?: string;
  // Processes outlive this one (the cluster command); otherwise they die with it.
  detached?: boolean;
  readyTimeoutMs?: number;
  /** The apiserver is also served there (all addresses, certificate SAN); loopback only when unset. */
  external?: ExternalServing;
}

// Everything needed to find and stop a control plane again, also from another process.
export interface ControlPlaneRecord {
  binDir: string;
  workDir: string;
  kubeconfigPath: string;
  serverUrl: string;
  etcd?: EtcdRecord;
  apiserver?: ApiServerRecord;
  /** The certificates and keys in workDir (kube-controller-manager signs service-account tokens with one). */
  pki?: Pki;
  crds: string[];
  startMs: number;
}

export interface RunningControlPlane extends ControlPlane {
  record: ControlPlaneRecord;
}

export function processesOf(record: ControlPlaneRecord): ProcessRecord[] {
  return [record.etcd, record.apiserver].flatMap((c) => (c ? [c.process] : []));
}

export async function stopControlPlane(record: ControlPlaneRecord): Promise<void> {
  const errors: string[] = [];
  // The apiserver first, so it does not log a storm of etcd connection errors on the way down.
  for (const server of processesOf(record).reverse()) {
    try {
      await stopProcess(server);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  await rm(record.kubeconfigPath, { force: true });
  await rm(record.workDir, { recursive: true, force: true });
  if (errors.length > 0) throw new Error(`control plane stop: ${errors.join('; ')}`);
}

function stopControlPlaneNow(record: ControlPlaneRecord): void {
  for (const server of processesOf(record)) killNow(server);
  rmSync(record.kubeconfigPath, { force: true });
  rmSync(record.workDir, { recursive: true, force: true });
}

export function loadKubeConfig(kubeconfigPath: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return kubeConfig;
}

async function prepareWorkDir(workDir: string | undefined): Promise<string> {
  if (workDir === undefined) return mkdtemp(path.join(os.tmpdir(), 'cilium-ts-envtest-'));
  if (existsSync(workDir)) throw new Error(`control plane: work dir ${workDir} already exists; is another control plane using it?`);
  // Only its owner enters it (mkdtemp does the same): it holds the keys to etcd and the apiserver.
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  return workDir;
}

// Ports are free when picked but not held until etcd and kube-apiserver bind them; test processes
// running in parallel may take one in between.
const portAttempts = 5;

interface ServerOptions {
  binDir: string;
  pki: Pki;
  detached: boolean;
  readyTimeoutMs: number;
  external: ExternalServing | undefined;
}

// Starts etcd and kube-apiserver into record, on fresh ports for each attempt that lost a port.
async function startServers(record: ControlPlaneRecord, opts: ServerOptions): Promise<void> {
  const { binDir, pki, detached, readyTimeoutMs, external } = opts;
  for (let attempt = 1; ; attempt++) {
    const [etcdClientPort, etcdPeerPort, apiserverPort] = (await freePorts(3)) as [number, number, number];
    record.serverUrl = `https://127.0.0.1:${apiserverPort}`;
    try {
      record.etcd = await startEtcd({
        binary: binaryPath(binDir, 'etcd'),
        workDir: record.workDir,
        clientPort: etcdClientPort,
        peerPort: etcdPeerPort,
        pki,
        detached,
        readyTimeoutMs,
      });
      record.apiserver = await startApiServer({
        binary: binaryPath(binDir, 'kube-apiserver'),
        workDir: record.workDir,
        port: apiserverPort,
        etcdUrl: record.etcd.clientUrl,
        pki,
        detached,
        readyTimeoutMs,
        ...(external === undefined ? {} : { external }),
      });
      return;
    } catch (err) {
      if (!(err instanceof AddressInUseError)) throw err;
      if (attempt >= portAttempts) {
        throw new Error(`control plane: another process took a port before etcd or kube-apiserver bound it, ${portAttempts} times in a row; last: ${err.message}`, {
          cause: err,
        });
      }
      // The next attempt starts clean: no etcd member bound to the old peer URL, no stale log lines.
      if (record.etcd) await stopProcess(record.etcd.process);
      record.etcd = undefined;
      for (const name of ['etcd-data', 'etcd.log', 'kube-apiserver.log']) {
        await rm(path.join(record.workDir, name), { recursive: true, force: true });
      }
    }
  }
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<RunningControlPlane> {
  const started = Date.now();
  const binDir = opts.binDir ?? defaultBinDir();
  assertBinaries(binDir);
  const detached = opts.detached ?? false;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
  const workDir = await prepareWorkDir(opts.workDir);
  const record: ControlPlaneRecord = {
    binDir,
    workDir,
    kubeconfigPath: opts.kubeconfigPath ?? path.join(workDir, 'kubeconfig'),
    serverUrl: '',
    crds: [],
    startMs: 0,
  };
  const unregister = registerCleanup({
    name: `control plane in ${workDir}`,
    stop: () => stopControlPlane(record),
    stopNow: () => stopControlPlaneNow(record),
  });
  try {
    const pki = await generatePki(workDir, opts.external === undefined ? [] : [opts.external.advertiseAddress]);
    record.pki = pki;
    await startServers(record, { binDir, pki, detached, readyTimeoutMs, external: opts.external });
    await writeKubeconfig(record.kubeconfigPath, record.serverUrl, pki);
    const kubeConfig = loadKubeConfig(record.kubeconfigPath);
    record.crds = await installCrds(kubeConfig, opts.crdDir ?? defaultCrdDir);
    record.startMs = Date.now() - started;
    // A detached control plane belongs to whoever records it (the cluster command), not to us.
    if (detached) unregister();
    let stopped: Promise<void> | undefined;
    return {
      kubeconfigPath: record.kubeconfigPath,
      kubeConfig,
      binDir,
      record,
      stop: () => {
        stopped ??= stopControlPlane(record).finally(unregister);
        return stopped;
      },
    };
  } catch (err) {
    const stopError = await stopControlPlane(record).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    unregister();
    if (stopError) throw new Error(`${(err as Error).message}\n(and cleaning up failed: ${stopError.message})`, { cause: err });
    throw err;
  }
}
