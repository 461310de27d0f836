// Starts and stops fixtures/datapath-owner.ts: one process that owns the LinuxDatapath for a while.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { REPORT_MARK } from './owner-protocol.js';
import type { DesiredState, OwnerReport } from './owner-protocol.js';

const OWNER_SCRIPT = fileURLToPath(new URL('./fixtures/datapath-owner.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export class OwnerProcess {
  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly report: OwnerReport,
  ) {}

  /** Writes the state next to the pins' scratch dir and resolves once the owner has applied it. */
  static async start(name: string, bpffsDir: string, state: DesiredState, stateDir: string): Promise<OwnerProcess> {
    const stateFile = path.join(stateDir, `${name}.json`);
    writeFileSync(stateFile, JSON.stringify(state));
    // pdeathsig: a test runner killed mid-test takes the owner with it.
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, '--import', 'tsx', OWNER_SCRIPT, bpffsDir, stateFile], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const report = await new Promise<OwnerReport>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.startsWith(REPORT_MARK)) resolve(JSON.parse(line.slice(REPORT_MARK.length)) as OwnerReport);
      });
      child.once('exit', (code, signal) => reject(new Error(`datapath owner ${name} exited (code ${String(code)}, signal ${String(signal)}) before reporting: ${stderr.trim()}`)));
    });
    return new OwnerProcess(name, child, report);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Closes its stdin: the owner closes the datapath (leaving pins and programs) and exits. */
  async exit(): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    const exited = once(this.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    this.child.stdin!.end();
    const [code] = await exited;
    return code;
  }

  /** SIGKILL, as a crash: nothing of the owner's own cleanup runs. Resolves with the signal seen. */
  async crash(): Promise<NodeJS.Signals | null> {
    if (!this.running) return this.child.signalCode;
    const exited = once(this.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    this.child.kill('SIGKILL');
    const [, signal] = await exited;
    return signal;
  }

  /** For cleanup after a failed test. */
  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}
