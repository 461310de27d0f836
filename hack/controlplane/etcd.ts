// One single-member etcd on loopback with its data under the control plane's work dir. Client and
// peer URLs are TLS and require a certificate signed by etcd's own CA, so a local user without
// the apiserver's etcd client key (0600) can neither read nor write the store.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Pki } from './pki.js';
import type { ProcessRecord } from './process.js';
import { startServer } from './readiness.js';

export interface EtcdRecord {
  process: ProcessRecord;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

export interface EtcdOptions {
  binary: string;
  workDir: string;
  clientPort: number;
  peerPort: number;
  pki: Pki;
  detached: boolean;
  readyTimeoutMs: number;
}

// --unsafe-no-fsync exists since etcd 3.5; a throwaway store gains a lot from skipping fsync.
async function supportsNoFsync(binary: string): Promise<boolean> {
  const { stdout, stderr } = await promisify(execFile)(binary, ['--help']);
  return `${stdout}${stderr}`.includes('--unsafe-no-fsync');
}

export async function startEtcd(opts: EtcdOptions): Promise<EtcdRecord> {
  const clientUrl = `https://127.0.0.1:${opts.clientPort}`;
  const peerUrl = `https://127.0.0.1:${opts.peerPort}`;
  const { pki } = opts;
  const dataDir = path.join(opts.workDir, 'etcd-data');
  const args = [
    '--name=cilium-ts',
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=cilium-ts=${peerUrl}`,
    `--cert-file=${pki.etcdServerCert}`,
    `--key-file=${pki.etcdServerKey}`,
    `--trusted-ca-file=${pki.etcdCaCert}`,
    '--client-cert-auth=true',
    `--peer-cert-file=${pki.etcdServerCert}`,
    `--peer-key-file=${pki.etcdServerKey}`,
    `--peer-trusted-ca-file=${pki.etcdCaCert}`,
    '--peer-client-cert-auth=true',
    '--log-level=warn',
  ];
  if (await supportsNoFsync(opts.binary)) args.push('--unsafe-no-fsync=true');
  const process = await startServer(
    { name: 'etcd', binary: opts.binary, args, logPath: path.join(opts.workDir, 'etcd.log'), detached: opts.detached },
    `${clientUrl}/readyz`,
    opts.readyTimeoutMs,
    { ca: readFileSync(pki.etcdCaCert), cert: readFileSync(pki.etcdClientCert), key: readFileSync(pki.etcdClientKey) },
  );
  return { process, clientUrl, peerUrl, dataDir };
}
