// A component's record kept in its own dir as it is built, so a `down` after an `up` that was
// killed before recording it can still undo what it did to the host (sysctls, created paths).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function writeJournal(file: string, record: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(record)}\n`);
}

export async function readJournal<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    // none written (the component never started), or cut short by the kill: nothing to undo
    return undefined;
  }
}
