// Control planes this process is responsible for, torn down when the process ends: on a signal
// there is time to stop them gracefully; at 'exit' only synchronous work runs, so they are killed.
import { constants } from 'node:os';
import { processGlobal } from './process-global.js';

export interface Cleanup {
  name: string;
  stop(): Promise<void>;
  stopNow(): void;
}

// One registry per process: with a handler set per module copy, the copy with nothing to stop
// would exit the process while another copy was still stopping its control plane.
const state = processGlobal('cilium-ts.envtest.cleanup', () => ({
  pending: new Set<Cleanup>(),
  installed: false,
  stopping: undefined as Promise<void> | undefined,
}));
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function onSignal(sig: (typeof signals)[number]): void {
  state.stopping ??= Promise.allSettled([...state.pending].map((c) => c.stop())).then((results) => {
    for (const r of results) if (r.status === 'rejected') console.error(`cleanup after ${sig}:`, r.reason);
  });
  void state.stopping.finally(() => process.exit(128 + constants.signals[sig]));
}

function onExit(): void {
  for (const c of state.pending) {
    try {
      c.stopNow();
    } catch (err) {
      console.error(`cleanup of ${c.name} at exit:`, err);
    }
  }
}

function install(): void {
  if (state.installed) return;
  state.installed = true;
  for (const sig of signals) process.on(sig, onSignal);
  process.on('exit', onExit);
}

export function registerCleanup(cleanup: Cleanup): () => void {
  install();
  state.pending.add(cleanup);
  return () => state.pending.delete(cleanup);
}
