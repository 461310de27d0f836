// Endpoint state that outlives the agent: one JSON file per endpoint in a state directory, written
// so that a crash at any point leaves either the old file or the new one, never half of one.
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { isAtomicTemp, writeFileAtomic } from '../../runtime/atomic-file.js';
import { checkEndpointRecord, type EndpointRecord } from './endpoint.js';

/** Bumped when a record's meaning changes; a file of another version is reported, not guessed at. */
export const ENDPOINT_STATE_VERSION = 1;

const FILE = /^endpoint-(\d{5})\.json$/;

function fileName(id: number): string {
  return `endpoint-${String(id).padStart(5, '0')}.json`;
}

export interface RestoreProblem {
  file: string;
  reason: string;
}

export interface RestoreResult {
  endpoints: EndpointRecord[];
  /** Files that could not be read back; they are left in place for a person to look at. */
  problems: RestoreProblem[];
}

export class EndpointStateStore {
  constructor(readonly dir: string) {}

  /** Writes `ep` atomically: temp file, fsync, rename over the old file, fsync of the directory. */
  async save(ep: EndpointRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const target = path.join(this.dir, fileName(ep.id));
    const body = `${JSON.stringify({ version: ENDPOINT_STATE_VERSION, endpoint: ep }, null, 2)}\n`;
    try {
      await writeFileAtomic(target, body, 0o600);
    } catch (err) {
      throw new Error(`endpoint ${ep.id}: save state to ${target}: ${(err as Error).message}`, { cause: err });
    }
    await this.syncDir();
  }

  /** Removes the endpoint's file; a missing file is not an error. */
  async remove(id: number): Promise<void> {
    await rm(path.join(this.dir, fileName(id)), { force: true });
    await this.syncDir();
  }

  /**
   * Reads every endpoint file back, checking each record; a file that cannot be parsed or checked
   * is reported and skipped. Temp files of writes a crash interrupted are deleted.
   */
  async restore(): Promise<RestoreResult> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { endpoints: [], problems: [] };
      throw new Error(`endpoint state dir ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    const endpoints: EndpointRecord[] = [];
    const problems: RestoreProblem[] = [];
    for (const name of names.sort()) {
      const file = path.join(this.dir, name);
      if (isAtomicTemp(name)) {
        await rm(file, { force: true });
        continue;
      }
      const m = FILE.exec(name);
      if (m === null) continue;
      try {
        endpoints.push(parseStateFile(await readFile(file, 'utf8'), Number(m[1])));
      } catch (err) {
        problems.push({ file, reason: (err as Error).message });
      }
    }
    return { endpoints, problems };
  }

  private async syncDir(): Promise<void> {
    const fh = await open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

/** The record in one state file, which must be the endpoint the file name says. */
export function parseStateFile(text: string, expectedId: number): EndpointRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`, { cause: err });
  }
  const { version, endpoint } = (doc ?? {}) as { version?: unknown; endpoint?: unknown };
  if (version !== ENDPOINT_STATE_VERSION) throw new Error(`version: ${JSON.stringify(version)} is not ${ENDPOINT_STATE_VERSION}`);
  checkEndpointRecord(endpoint, 'endpoint');
  const ep = endpoint as EndpointRecord;
  if (ep.id !== expectedId) throw new Error(`endpoint.id: ${ep.id} does not match the file name's ${expectedId}`);
  return ep;
}
