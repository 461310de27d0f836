// kube-controller-manager and kube-scheduler beside a control plane, for a cluster with nodes:
// the scheduler places pods, the controller manager runs Deployments/ReplicaSets, node lifecycle,
// garbage collection and the service-account controllers (signing tokens with the apiserver's
// service-account key). Both use the admin kubeconfig and serve /healthz on a free loopback port.
import path from 'node:path';
import type { Pki } from './pki.js';
import { freePorts } from './ports.js';
import { stopProcess, type ProcessRecord } from './process.js';
import { startServer } from './readiness.js';

export interface KubeControllersRecord {
  controllerManager?: ProcessRecord;
  scheduler?: ProcessRecord;
  healthUrls: string[];
}

export interface KubeControllersOptions {
  binDir: string;
  workDir: string;
  kubeconfigPath: string;
  pki: Pki;
  readyTimeoutMs?: number;
}

export function kubeControllerProcesses(record: KubeControllersRecord): ProcessRecord[] {
  return [record.controllerManager, record.scheduler].flatMap((p) => (p ? [p] : []));
}

export async function startKubeControllers(opts: KubeControllersOptions): Promise<KubeControllersRecord> {
  const [kcmPort, schedulerPort] = (await freePorts(2)) as [number, number];
  const timeout = opts.readyTimeoutMs ?? 60_000;
  const record: KubeControllersRecord = {
    healthUrls: [`https://127.0.0.1:${kcmPort}/healthz`, `https://127.0.0.1:${schedulerPort}/healthz`],
  };
  const common = (port: number): string[] => [
    `--kubeconfig=${opts.kubeconfigPath}`,
    `--authentication-kubeconfig=${opts.kubeconfigPath}`,
    `--authorization-kubeconfig=${opts.kubeconfigPath}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    `--cert-dir=${opts.workDir}`,
    '--leader-elect=false',
  ];
  // Their self-signed serving certificates are made at start: /healthz is probed without checking it.
  const tls = { rejectUnauthorized: false };
  try {
    record.controllerManager = await startServer(
      {
        name: 'kube-controller-manager',
        binary: path.join(opts.binDir, 'kube-controller-manager'),
        args: [
          ...common(kcmPort),
          '--controllers=*',
          `--service-account-private-key-file=${opts.pki.serviceAccountPrivateKey}`,
          `--root-ca-file=${opts.pki.caCert}`,
          '--use-service-account-credentials=false',
          // cilium-operator hands out podCIDRs (cluster-pool IPAM), not the node IPAM controller.
          '--allocate-node-cidrs=false',
          '--profiling=false',
        ],
        logPath: path.join(opts.workDir, 'kube-controller-manager.log'),
        detached: true,
      },
      record.healthUrls[0] as string,
      timeout,
      tls,
    );
    record.scheduler = await startServer(
      {
        name: 'kube-scheduler',
        binary: path.join(opts.binDir, 'kube-scheduler'),
        args: [...common(schedulerPort), '--profiling=false'],
        logPath: path.join(opts.workDir, 'kube-scheduler.log'),
        detached: true,
      },
      record.healthUrls[1] as string,
      timeout,
      tls,
    );
    return record;
  } catch (err) {
    await stopKubeControllers(record);
    throw err;
  }
}

export async function stopKubeControllers(record: KubeControllersRecord): Promise<void> {
  const errors: string[] = [];
  for (const p of kubeControllerProcesses(record)) await stopProcess(p).catch((err: unknown) => errors.push((err as Error).message));
  if (errors.length > 0) throw new Error(`kube-controller-manager/kube-scheduler stop: ${errors.join('; ')}`);
}
