// kube-apiserver on loopback, client-certificate auth (admin in system:masters) and RBAC, reaching
// etcd with the one client certificate etcd accepts, in the shape envtest uses: no controller-manager runs beside it, so the ServiceAccount admission plugin
// (which waits for token controllers) is off.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Pki } from './pki.js';
import type { ProcessRecord } from './process.js';
import { startServer } from './readiness.js';

export interface ApiServerRecord {
  process: ProcessRecord;
  url: string;
}

export interface ApiServerOptions {
  binary: string;
  workDir: string;
  port: number;
  etcdUrl: string;
  pki: Pki;
  detached: boolean;
  readyTimeoutMs: number;
  /** Where else it is reached (a local cluster's node network); loopback only when unset. */
  external?: ExternalServing;
}

export interface ExternalServing {
  /** The address it advertises (the `kubernetes` Service's endpoint); also in the serving certificate. */
  advertiseAddress: string;
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServerRecord> {
  const url = `https://127.0.0.1:${opts.port}`;
  const args = [
    `--etcd-servers=${opts.etcdUrl}`,
    `--etcd-cafile=${opts.pki.etcdCaCert}`,
    `--etcd-certfile=${opts.pki.etcdClientCert}`,
    `--etcd-keyfile=${opts.pki.etcdClientKey}`,
    // Reached at loopback and at the advertised address (bound by the time nodes connect).
    `--bind-address=${opts.external === undefined ? '127.0.0.1' : '0.0.0.0'}`,
    ...(opts.external === undefined ? [] : [`--advertise-address=${opts.external.advertiseAddress}`]),
    `--secure-port=${opts.port}`,
    `--tls-cert-file=${opts.pki.servingCert}`,
    `--tls-private-key-file=${opts.pki.servingKey}`,
    `--client-ca-file=${opts.pki.caCert}`,
    '--authorization-mode=RBAC',
    `--service-account-issuer=${url}/`,
    `--service-account-key-file=${opts.pki.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${opts.pki.serviceAccountPrivateKey}`,
    // Outside the operator's default pod pool (10.0.0.0/8): the `kubernetes` Service's 10.x.0.1
    // would otherwise be the first node's router IP.
    '--service-cluster-ip-range=172.20.0.0/24',
    '--allow-privileged=true',
    '--disable-admission-plugins=ServiceAccount',
    '--profiling=false',
    // kubectl exec/logs/port-forward reach a local node's kubelet at its node IP, not its name.
    '--kubelet-preferred-address-types=InternalIP',
  ];
  const process = await startServer(
    { name: 'kube-apiserver', binary: opts.binary, args, logPath: path.join(opts.workDir, 'kube-apiserver.log'), detached: opts.detached },
    `${url}/readyz`,
    opts.readyTimeoutMs,
    { ca: readFileSync(opts.pki.caCert), cert: readFileSync(opts.pki.adminCert), key: readFileSync(opts.pki.adminKey) },
  );
  return { process, url };
}
