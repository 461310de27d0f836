import { expect } from 'chai';
import { newLogger } from '../../runtime/log.js';
import type { AgentApiDeps } from './deps.js';
import { expireAllocation } from './routes-ipam.js';

describe('IPAM expiration release', () => {
  it('releases an expired address unless an endpoint took it meanwhile', () => {
    const released: string[] = [];
    const deps = {
      endpoints: { list: () => [{ ipv4: '10.0.0.9' }] },
      ipam: { release: (ip: string) => (released.push(ip), true) },
    } as unknown as AgentApiDeps;
    const expire = expireAllocation(deps, newLogger('ipam-expiration-test', 'error'));
    expire('10.0.0.8');
    expire('10.0.0.9');
    expect(released).to.deep.equal(['10.0.0.8']);
  });
});
