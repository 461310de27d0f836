import { expect } from 'chai';
import { CNI_ERR, CniError, errorObject } from './errors.js';
import { addResult, prevAttachment, type Attachment } from './result.js';

const ATTACHMENT: Attachment = {
  hostIfname: 'lxcb133159de544',
  hostMac: '0a:00:00:00:00:01',
  ifname: 'eth0',
  podMac: '0a:00:00:00:00:02',
  sandbox: '/var/run/netns/cni-1',
  ip: '10.0.1.17',
  router: '10.0.1.1',
};

describe('cni/result and error objects', () => {
  it('prints a 1.0.0 result without per-IP versions', () => {
    expect(addResult(ATTACHMENT, '1.0.0')).to.deep.equal({
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'lxcb133159de544', mac: '0a:00:00:00:00:01' },
        { name: 'eth0', mac: '0a:00:00:00:00:02', sandbox: '/var/run/netns/cni-1' },
      ],
      ips: [{ interface: 1, address: '10.0.1.17/32', gateway: '10.0.1.1' }],
      routes: [{ dst: '10.0.1.1/32' }, { dst: '0.0.0.0/0', gw: '10.0.1.1' }],
      dns: {},
    });
  });

  it('prints 0.3.0, 0.3.1 and 0.4.0 results with "version": "4" on the IP', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
      const r = addResult(ATTACHMENT, v);
      expect(r.cniVersion).to.equal(v);
      expect(r.ips).to.deep.equal([{ version: '4', interface: 1, address: '10.0.1.17/32', gateway: '10.0.1.1' }]);
    }
  });

  it('reads back what a result gave the pod interface, in either shape', () => {
    for (const v of ['0.4.0', '1.0.0'] as const) {
      expect(prevAttachment(JSON.parse(JSON.stringify(addResult(ATTACHMENT, v))), 'eth0')).to.deep.equal({ addresses: ['10.0.1.17/32'] });
    }
    const bad = (prev: unknown, ifname = 'eth0'): string => {
      try {
        prevAttachment(prev, ifname);
      } catch (err) {
        expect((err as CniError).code).to.equal(CNI_ERR.invalidNetworkConfig);
        return (err as CniError).details;
      }
      throw new Error('accepted');
    };
    expect(bad(addResult(ATTACHMENT, '1.0.0'), 'eth1')).to.contain('no interface "eth1"');
    expect(bad({ interfaces: [], ips: [] })).to.contain('prevResult.interfaces');
    expect(bad({ interfaces: {}, ips: [] })).to.contain('prevResult.interfaces');
    expect(bad({ interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ interface: 0 }] })).to.contain('prevResult.ips[0].address');
    expect(bad('x')).to.contain('"prevResult"');
  });

  it('turns errors into the spec\'s error object, unknown ones as internal (999)', () => {
    expect(errorObject(new CniError(CNI_ERR.tryAgainLater, 'cilium agent unreachable', 'no socket'), '0.4.0')).to.deep.equal({
      cniVersion: '0.4.0',
      code: 11,
      msg: 'cilium agent unreachable',
      details: 'no socket',
    });
    expect(errorObject(new CniError(CNI_ERR.incompatibleVersion, 'x'), '1.0.0')).to.deep.equal({ cniVersion: '1.0.0', code: 1, msg: 'x' });
    expect(errorObject(new Error('boom'), '1.0.0')).to.deep.equal({ cniVersion: '1.0.0', code: 999, msg: 'internal error', details: 'boom' });
  });
});
