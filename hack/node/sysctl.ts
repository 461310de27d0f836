// Host sysctls a node's parts change (kubelet: vm.overcommit_memory, kernel.panic,
// kernel.panic_on_oops; the CNI plugins: net.ipv4.ip_forward), saved before they start and
// written back by `down`.
import { readFile, writeFile } from 'node:fs/promises';

export type SysctlValues = Record<string, string>;

const procPath = (name: string): string => `/proc/sys/${name.replaceAll('.', '/')}`;

export async function saveSysctls(names: readonly string[]): Promise<SysctlValues> {
  const saved: SysctlValues = {};
  for (const name of names) saved[name] = (await readFile(procPath(name), 'utf8')).trim();
  return saved;
}

export async function restoreSysctls(saved: SysctlValues): Promise<void> {
  const errors: string[] = [];
  for (const [name, value] of Object.entries(saved)) {
    try {
      if ((await readFile(procPath(name), 'utf8')).trim() !== value) await writeFile(procPath(name), value);
    } catch (err) {
      errors.push(`${name}=${value}: ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) throw new Error(`restore sysctls: ${errors.join('; ')}`);
}
