import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pollUntil } from '../../test/envtest/poll.js';
import { isRunning, logTail, pidsMentioning, startProcess, stopProcess, type ProcessRecord } from './process.js';

describe('control plane processes', function () {
  let dir: string;
  const started: ProcessRecord[] = [];

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-process-test-'));
  });

  afterEach(async function () {
    for (const p of started.splice(0)) await stopProcess(p, 100);
    await rm(dir, { recursive: true, force: true });
  });

  async function start(script: string, detached = false): Promise<ProcessRecord> {
    const record = await startProcess({ name: 'sh', binary: '/bin/sh', args: ['-c', script, dir], logPath: path.join(dir, 'sh.log'), detached });
    started.push(record);
    return record;
  }

  it('stops a process with SIGTERM and reports it gone', async function () {
    // The shell stays (no exec), so its command line keeps naming dir.
    const p = await start('while :; do sleep 0.05; done');
    expect(isRunning(p)).to.equal(true);
    // Until the child has exec'd the shell, its command line is still node's.
    await pollUntil(`pid ${p.pid} to name ${dir}`, () => pidsMentioning(dir).includes(p.pid), 5_000);
    await stopProcess(p);
    expect(isRunning(p)).to.equal(false);
    expect(pidsMentioning(dir)).to.not.include(p.pid);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async function () {
    const p = await start('trap "" TERM; echo ready; while :; do sleep 0.05; done', true);
    // The trap is set once the script has printed.
    await pollUntil(`pid ${p.pid} to print ready`, () => logTail(p.logPath).includes('ready'), 10_000);
    await stopProcess(p, 200);
    expect(isRunning(p)).to.equal(false);
  });

  it('never signals a pid that now belongs to another process', async function () {
    const p = await start('exec sleep 30');
    const stale = { ...p, startTicks: p.startTicks - 1 };
    expect(isRunning(stale)).to.equal(false);
    await stopProcess(stale, 100);
    expect(isRunning(p)).to.equal(true);
  });

  it('names the program when it cannot start', async function () {
    const missing = path.join(dir, 'no-such-binary');
    await writeFile(path.join(dir, 'not-executable'), 'data');
    for (const binary of [missing, path.join(dir, 'not-executable')]) {
      let error: Error | undefined;
      try {
        await startProcess({ name: 'probe', binary, args: [], logPath: path.join(dir, 'probe.log'), detached: true });
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message).to.match(/^probe: cannot start/);
      expect(error?.message).to.include(binary);
    }
  });

  it('keeps the last lines of a log for error messages', async function () {
    const log = path.join(dir, 'long.log');
    await writeFile(log, Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n') + '\n');
    expect(logTail(log, 3)).to.equal('line 97\nline 98\nline 99');
    expect(logTail(path.join(dir, 'absent.log'))).to.match(/no log at .*absent\.log/);
  });
});
