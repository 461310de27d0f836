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
