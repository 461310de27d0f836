// Files other processes read while we write them (the CNI conflist the runtime watches, endpoint
// state, the CNI delete queue) appear whole or not at all: the body goes to a temp file beside
// the target, is synced, and is renamed over it. The temp name starts with a dot and ends in
// `.tmp`, so directory readers that take `*.conflist`, `ep-*.json` or `*.delete` never see it.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export const ATOMIC_TEMP_SUFFIX = '.tmp';

/** A temp file a crashed write left behind. */
export function isAtomicTemp(name: string): boolean {
  return name.startsWith('.') && name.endsWith(ATOMIC_TEMP_SUFFIX);
}

export async function writeFileAtomic(target: string, body: string, mode: number): Promise<void> {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}${ATOMIC_TEMP_SUFFIX}`);
  try {
    const fh = await open(temp, 'wx', mode);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
