// Starts and stops fixtures/datapath-owner.ts: one process that owns the LinuxDatapath for a while.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../hack/controlplane/paths.js';
import { OBSERVATION_MARK, OBSERVE_COMMAND, REPORT_MARK } from './owner-protocol.js';
import type { DesiredState, Observation, OwnerReport } from './owner-protocol.js';
import { awaitFirstAnswer, killChild } from './children.js';
import type { ChildSet } from './children.js';

const OWNER_SCRIPT = fileURLToPath(new URL('./fixtures/datapath-owner.ts', import.meta.url));
// Loading tsx and the object and syncing a few maps takes a second or two; a loaded 2-core
// machine gets ample slack before the owner counts as hung.
const START_TIMEOUT_MS = 30_000;
const OBSERVE_TIMEOUT_MS = 10_000;

export class OwnerProcess {
  private readonly observations: Array<(o: Observation) => void> = [];
  private stderr = '';

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {}

  /**
   * Writes the state into `stateDir`, starts the owner (tracked in `children` from its spawn) and
   * resolves once it has applied the state; an owner that does not report in time is killed.
   */
  static async start(name: string, bpffsDir: string, state: DesiredState, stateDir: string, children: ChildSet): Promise<{ owner: OwnerProcess; report: OwnerReport }> {
    const stateFile = path.join(stateDir, `${name}.json`);
    writeFileSync(stateFile, JSON.stringify(state));
    // pdeathsig: a test runner killed mid-test takes the owner with it.
    const child = children.add(
      spawn('setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, '--import', 'tsx', OWNER_SCRIPT, bpffsDir, stateFile], {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    const owner = new OwnerProcess(name, child);
    child.stderr!.on('data', (d: Buffer) => (owner.stderr += d.toString()));
    const reported = new Promise<OwnerReport>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.startsWith(REPORT_MARK)) resolve(JSON.parse(line.slice(REPORT_MARK.length)) as OwnerReport);
        else if (line.startsWith(OBSERVATION_MARK)) owner.observations.shift()?.(JSON.parse(line.slice(OBSERVATION_MARK.length)) as Observation);
      });
    });
    const report = await awaitFirstAnswer(child, `datapath owner ${name}`, reported, START_TIMEOUT_MS, () => owner.stderr);
    return { owner, report };
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Drains the event ring and reads metrics and conntrack through the owner's datapath. */
  async observe(): Promise<Observation> {
    if (!this.running) throw new Error(`datapath owner ${this.name} is not running; nothing to observe through`);
    const answer = new Promise<Observation>((resolve) => this.observations.push(resolve));
    this.child.stdin!.write(`${OBSERVE_COMMAND}\n`);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`datapath owner ${this.name}: no observation within ${OBSERVE_TIMEOUT_MS} ms; stderr: ${this.stderr.trim()}`)), OBSERVE_TIMEOUT_MS);
    });
    try {
      return await Promise.race([answer, late]);
    } finally {
      clearTimeout(timer);
    }
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
    await killChild(this.child);
    return this.child.signalCode;
  }
}
