// Polls a health endpoint until it answers 200, failing early (with the log tail) when the process
// that should serve it has exited.
import type { RequestOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequest } from './http.js';
import { isRunning, logTail, type ProcessRecord } from './process.js';

export async function waitUntilReady(url: string, owner: ProcessRecord, timeoutMs: number, tls: RequestOptions = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    if (!isRunning(owner)) {
      throw new Error(`${owner.name} exited before ${url} became ready; last lines of ${owner.logPath}:\n${logTail(owner.logPath)}`);
    }
    try {
      const res = await httpRequest(url, tls);
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${res.body.trim().split('\n').filter((l) => l.includes('failed')).join('; ') || res.body.slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `${owner.name} not ready within ${timeoutMs / 1000}s at ${url} (last: ${last}); last lines of ${owner.logPath}:\n${logTail(owner.logPath)}`,
      );
    }
    await sleep(100);
  }
}
