// Resolves the control-plane binaries and refuses early, naming the missing one.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export const controlPlaneBinaries = ['etcd', 'kube-apiserver', 'kubectl'] as const;
export type ControlPlaneBinary = (typeof controlPlaneBinaries)[number];

export function binaryPath(binDir: string, name: ControlPlaneBinary): string {
  return path.join(binDir, name);
}

export function missingBinaries(binDir: string): ControlPlaneBinary[] {
  return controlPlaneBinaries.filter((name) => {
    try {
      accessSync(binaryPath(binDir, name), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

export function assertBinaries(binDir: string): void {
  const missing = missingBinaries(binDir);
  if (missing.length > 0) {
    throw new Error(
      `control plane: ${missing.join(', ')} not found (or not executable) in ${binDir}; run \`npm run setup\` to build them`,
    );
  }
}
