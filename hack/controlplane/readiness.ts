// Starting a server of the control plane and polling its health endpoint until it answers 200.
// A start that fails leaves no process behind, shows the log tail, and says when the cause was a
// port another process took first, so the caller can retry with other ports.
import type { RequestOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequest } from './http.js';
import { listensOn } from './ports.js';
import { isRunning, logTail, startProcess, stopProcess, type ProcessRecord, type StartOptions } from './process.js';

// The bind error of Go's net package, as etcd and kube-apiserver log it.
const addressInUse = /bind: address already in use/;

export class AddressInUseError extends Error {}

async function waitUntilReady(url: string, owner: ProcessRecord, timeoutMs: number, tls: RequestOptions): Promise<void> {
  const port = Number(new URL(url).port);
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    if (!isRunning(owner)) {
      throw new Error(`${owner.name} exited before ${url} became ready; last lines of ${owner.logPath}:\n${logTail(owner.logPath)}`);
    }
    try {
      const res = await httpRequest(url, tls);
      if (res.status === 200 && listensOn(owner.pid, port)) return;
      last =
        res.status === 200
          ? `answered by another process than pid ${owner.pid}`
          : `HTTP ${res.status}: ${res.body.trim().split('\n').filter((l) => l.includes('failed')).join('; ') || res.body.slice(0, 300)}`;
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

export async function startServer(start: StartOptions, readyUrl: string, timeoutMs: number, tls: RequestOptions = {}): Promise<ProcessRecord> {
  const record = await startProcess(start);
  try {
    await waitUntilReady(readyUrl, record, timeoutMs, tls);
    return record;
  } catch (err) {
    const message = await stopProcess(record).then(
      () => (err as Error).message,
      (stopErr: unknown) => `${(err as Error).message}\n(and stopping it failed: ${(stopErr as Error).message})`,
    );
    if (addressInUse.test(logTail(record.logPath))) throw new AddressInUseError(message, { cause: err });
    throw new Error(message, { cause: err });
  }
}
