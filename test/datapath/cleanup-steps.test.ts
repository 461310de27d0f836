import { expect } from 'chai';
import { runCleanup } from './cleanup-steps.js';

describe('runCleanup', () => {
  it('runs every step after failures and rethrows them together, naming each step', async () => {
    const ran: string[] = [];
    const err = await runCleanup('test teardown', [
      ['close datapath', () => { ran.push('close'); throw new Error('EBADF'); }],
      ['destroy network', async () => { ran.push('destroy'); await Promise.reject(new Error('busy')); }],
      ['remove pins', () => ran.push('pins')],
    ]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(ran).to.deep.equal(['close', 'destroy', 'pins']);
    expect(err).to.be.instanceOf(AggregateError);
    expect((err as AggregateError).errors.map((e: Error) => e.message)).to.deep.equal(['test teardown: close datapath: EBADF', 'test teardown: destroy network: busy']);
  });

  it('rethrows a single failure as it is (with the step named) and resolves when all pass', async () => {
    const err = await runCleanup('t', [['only', () => { throw new Error('x'); }]]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.equal('t: only: x');
    await runCleanup('t', [['fine', () => undefined]]);
  });
});
