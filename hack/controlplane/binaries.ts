// Resolves the control-plane binaries and refuses early, naming the missing one.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

// The long-running servers of a control plane; kubectl only talks to them.
export const serverBinaries = ['etcd', 'kube-apiserver'] as const;
export const controlPlaneBinaries = [...serverBinaries, 'kubectl'] as const;
export type ControlPlaneBinary = (typeof controlPlaneBinaries)[number];

export function binaryPath(binDir: string, name: ControlPlaneBinary): string {
  return path.join(binDir, name);
}

export function serverBinaryPaths(binDir: string): string[] {
  return serverBinaries.map((name) => binaryPath(binDir, name));
}

// What a cluster with a node runs beside the control plane (kubectl exec/logs need kubelet too).
export const nodeBinaries = ['kubelet', 'kube-controller-manager', 'kube-scheduler', 'crictl'] as const;

function missingIn<T extends string>(binDir: string, names: readonly T[]): T[] {
  return names.filter((name) => {
    try {
      accessSync(path.join(binDir, name), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

export function missingBinaries(binDir: string): ControlPlaneBinary[] {
  return missingIn(binDir, controlPlaneBinaries);
}

export function missingNodeBinaries(binDir: string): string[] {
  return missingIn(binDir, nodeBinaries);
}

export function assertBinaries(binDir: string): void {
  const missing = missingBinaries(binDir);
  if (missing.length > 0) {
    throw new Error(
      `control plane: ${missing.join(', ')} not found (or not executable) in ${binDir}; run \`npm run setup\` to build them`,
    );
  }
}
