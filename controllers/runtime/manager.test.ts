import { expect } from 'chai';
import { Registry } from 'prom-client';
import { newLogger } from './log.js';
import { Manager } from './manager.js';

describe('Manager health', () => {
  it('is not ready while a health check fails, and names it', () => {
    let restored = false;
    const manager = new Manager({ name: 'agent', registry: new Registry(), logger: newLogger('test', 'error') }).addHealthCheck('endpoint-restore', () => restored);
    expect(manager.health()).to.deep.include({ ok: false, unsynced: ['endpoint-restore'] });
    restored = true;
    expect(manager.health()).to.deep.include({ ok: true, unsynced: [] });
  });
});
