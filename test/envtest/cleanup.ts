// Control planes this process is responsible for, torn down when the process ends: on a signal
// there is time to stop them gracefully; at 'exit' only synchronous work runs, so they are killed.
import { constants } from 'node:os';

export interface Cleanup {
  name: string;
  stop(): Promise<void>;
  stopNow(): void;
}

const pending = new Set<Cleanup>();
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;
let stopping: Promise<void> | undefined;

function onSignal(sig: (typeof signals)[number]): void {
  stopping ??= Promise.allSettled([...pending].map((c) => c.stop())).then((results) => {
    for (const r of results) if (r.status === 'rejected') console.error(`cleanup after ${sig}:`, r.reason);
  });
  void stopping.finally(() => process.exit(128 + constants.signals[sig]));
}

function onExit(): void {
  for (const c of pending) {
    try {
      c.stopNow();
    } catch (err) {
      console.error(`cleanup of ${c.name} at exit:`, err);
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of signals) process.on(sig, onSignal);
  process.on('exit', onExit);
}

export function registerCleanup(cleanup: Cleanup): () => void {
  install();
  pending.add(cleanup);
  return () => pending.delete(cleanup);
}
