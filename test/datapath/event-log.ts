// Collects a Datapath's events in the background so a test can wait for the one it expects and,
// when it does not come, fail with what did arrive.
import type { Datapath, DatapathEvent } from '../../datapath/types.js';

export class EventLog {
  readonly events: DatapathEvent[] = [];
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();
  private readonly done: Promise<void>;
  private failure?: unknown;

  constructor(dp: Datapath) {
    this.done = (async () => {
      try {
        for await (const ev of dp.events(this.abort.signal)) {
          this.events.push(ev);
          for (const wake of this.waiters) wake();
        }
      } catch (err) {
        if (!this.abort.signal.aborted) this.failure = err;
      }
    })();
  }

  /** Forgets what arrived so far, so the next wait only sees events of the next action. */
  clear(): void {
    this.events.length = 0;
  }

  /** The first event (already here or arriving within timeoutMs) that `match` accepts. */
  async waitFor<T extends DatapathEvent>(what: string, match: (ev: DatapathEvent) => ev is T, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure !== undefined) throw new Error(`event stream failed while waiting for ${what}`, { cause: this.failure });
      const found = this.events.find(match);
      if (found) return found;
      const woke = await new Promise<boolean>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve(true);
        };
        const timer = setTimeout(() => {
          this.waiters.delete(wake);
          resolve(false);
        }, Math.max(0, deadline - Date.now()));
        this.waiters.add(wake);
      });
      if (!woke) {
        const seen = this.events.map((e) => JSON.stringify(e)).join('\n  ');
        throw new Error(`no ${what} within ${timeoutMs} ms; ${this.events.length} events seen:\n  ${seen}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}
