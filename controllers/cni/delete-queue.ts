// DEL while the agent is down (upstream's deletion fallback): the plugin leaves one file per
// attachment, `<dir>/<containerID>-<ifname>.delete`, and succeeds, so kubelet can finish tearing
// the pod down; the agent deletes those endpoints (and so releases their IPs) when it starts.
// Files are written under a temporary name and renamed, so the agent never reads half of one.
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../runtime/atomic-file.js';

export interface DeleteRequest {
  'container-id': string;
  ifname: string;
  netns: string;
}

const SUFFIX = '.delete';

function fileName(req: DeleteRequest): string {
  return `${req['container-id']}-${req.ifname}${SUFFIX}`;
}

/** Plugin side: records the request; returns the file written. */
export async function enqueueDelete(dir: string, req: DeleteRequest): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = path.join(dir, fileName(req));
  await writeFileAtomic(target, JSON.stringify(req), 0o600);
  return target;
}

export interface DrainLog {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface DrainReport {
  deleted: number;
  failed: number;
}

function parseRequest(text: string, file: string): DeleteRequest {
  const v = JSON.parse(text) as Partial<DeleteRequest> | null;
  if (!v || typeof v['container-id'] !== 'string' || v['container-id'] === '') throw new Error(`${file}: field "container-id" must be a non-empty string`);
  return { 'container-id': v['container-id'], ifname: typeof v.ifname === 'string' ? v.ifname : '', netns: typeof v.netns === 'string' ? v.netns : '' };
}

/**
 * Agent side, on start: runs `del` for each queued request and removes its file once `del`
 * succeeded. A failed `del` keeps the file for the next start; a file that is not a request can
 * never succeed and is removed with a warning.
 */
export async function drainDeleteQueue(dir: string, del: (req: DeleteRequest) => Promise<void>, log: DrainLog): Promise<DrainReport> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { deleted: 0, failed: 0 };
    throw err;
  }
  const report: DrainReport = { deleted: 0, failed: 0 };
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    let req: DeleteRequest;
    try {
      req = parseRequest(await readFile(file, 'utf8'), file);
    } catch (err) {
      log.warn('dropping unreadable CNI delete request', { file, error: (err as Error).message });
      await unlink(file).catch(() => undefined);
      report.failed++;
      continue;
    }
    try {
      await del(req);
      await unlink(file);
      report.deleted++;
      log.info('CNI delete request from the queue done', { file, containerID: req['container-id'], ifname: req.ifname });
    } catch (err) {
      log.warn('CNI delete request from the queue failed; kept for the next start', { file, containerID: req['container-id'], error: (err as Error).message });
      report.failed++;
    }
  }
  return report;
}
