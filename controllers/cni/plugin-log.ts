// The plugin's log: one JSON object per line appended to the netconf's log-file, with the fields
// winston writes (level, message, timestamp, component). Loading winston would take longer than
// a whole ADD, and a process that lives for one request has nothing to buffer, so lines are
// appended directly. A log that cannot be written never fails the CNI call: the line goes to
// stderr instead, which the runtime keeps.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type LogFields = Record<string, unknown>;

export class PluginLog {
  private readonly context: LogFields = {};

  constructor(
    private readonly file: string,
    /** netconf enable-debug: debug lines are written too. */
    private readonly debugEnabled = false,
  ) {}

  /** Fields every later line carries (command, container, pod). */
  with(fields: LogFields): void {
    Object.assign(this.context, fields);
  }

  debug(message: string, fields: LogFields = {}): void {
    if (this.debugEnabled) this.write('debug', message, fields);
  }

  info(message: string, fields: LogFields = {}): void {
    this.write('info', message, fields);
  }

  warn(message: string, fields: LogFields = {}): void {
    this.write('warn', message, fields);
  }

  error(message: string, fields: LogFields = {}): void {
    this.write('error', message, fields);
  }

  private write(level: string, message: string, fields: LogFields): void {
    if (this.file === '') return;
    const line = JSON.stringify({ component: 'cilium-cni', level, message, ...this.context, ...fields, timestamp: new Date().toISOString() }) + '\n';
    try {
      appendFileSync(this.file, line);
    } catch {
      try {
        mkdirSync(dirname(this.file), { recursive: true });
        appendFileSync(this.file, line);
      } catch (err) {
        process.stderr.write(`cilium-cni: cannot write log ${this.file}: ${(err as Error).message}\n${line}`);
      }
    }
  }
}

/**
 * Milliseconds per step, each measured from the end of the one before; the first from process
 * start. From process.uptime/hrtime: the `performance` global loads perf_hooks, ~4 ms of a call.
 */
export class StepTimer {
  private last = process.hrtime.bigint();
  readonly steps: Record<string, number> = { startup: round(process.uptime() * 1000) };
  private readonly origin = this.last - BigInt(Math.round(this.steps.startup! * 1e6));

  mark(step: string): void {
    const now = process.hrtime.bigint();
    this.steps[step] = round(Number(now - this.last) / 1e6);
    this.last = now;
  }

  get totalMs(): number {
    return round(Number(process.hrtime.bigint() - this.origin) / 1e6);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
