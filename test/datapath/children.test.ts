import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { ChildSet, awaitFirstAnswer } from './children.js';

describe('test helper processes (ChildSet, awaitFirstAnswer)', function () {
  this.timeout(10_000);
  const children = new ChildSet();
  after(() => children.killAll());

  it('kills a child that hangs before answering and names it in the error', async () => {
    const child = children.add(spawn('sleep', ['60']));
    const err = await awaitFirstAnswer(child, 'hanging helper', new Promise<never>(() => undefined), 200, () => 'nothing').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(new RegExp(`^hanging helper \\(pid ${child.pid}\\) gave no answer within 200 ms and was killed`));
    expect(child.signalCode).to.equal('SIGKILL');
    expect(children.size).to.equal(0);
  });

  it('fails at once, with its stderr, when the child exits before answering', async () => {
    const child = children.add(spawn('sh', ['-c', 'echo broken >&2; exit 3']));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const err = await awaitFirstAnswer(child, 'early exit', new Promise<never>(() => undefined), 5000, () => stderr).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/^early exit \(pid \d+\) exited \(code 3, signal null\) before answering: broken$/);
  });

  it('returns the answer and leaves the child running; killAll ends what is left', async () => {
    const child = children.add(spawn('sleep', ['60']));
    expect(await awaitFirstAnswer(child, 'ok', Promise.resolve(42), 5000, () => '')).to.equal(42);
    expect(child.exitCode === null && child.signalCode === null).to.equal(true);
    await children.killAll();
    expect(child.signalCode).to.equal('SIGKILL');
  });
});
