import { expect } from 'chai';
import { InvalidNetworkValueError, assertIPv4, assertIPv4Prefix, assertIfName, assertMac, assertMtu, assertNetnsName } from './validate.js';

describe('netns/validate', () => {
  it('accepts interface names up to IFNAMSIZ-1 characters and rejects longer ones', () => {
    expect(assertIfName('eth0')).to.equal('eth0');
    expect(assertIfName('a'.repeat(15))).to.equal('a'.repeat(15));
    expect(() => assertIfName('a'.repeat(16))).to.throw(InvalidNetworkValueError, /1\.\.15 characters/);
    expect(() => assertIfName('')).to.throw(InvalidNetworkValueError);
  });

  it('rejects interface names that iproute2 would read as options or a shell would split', () => {
    for (const bad of ['-dev', 'eth0;rm', 'a b', 'a/b', 'x:1', '$(id)', '.hidden']) {
      expect(() => assertIfName(bad, 'host veth name'), bad).to.throw(InvalidNetworkValueError, /host veth name/);
    }
  });

  it('validates netns names, IPv4 addresses, prefixes, MACs and MTUs', () => {
    expect(assertNetnsName('ctst-0-client')).to.equal('ctst-0-client');
    expect(() => assertNetnsName('../etc')).to.throw(/netns name/);
    expect(() => assertNetnsName('-n')).to.throw(/netns name/);
    expect(assertIPv4('10.1.2.3')).to.equal('10.1.2.3');
    expect(() => assertIPv4('10.1.2.256', 'pod IP')).to.throw(/invalid pod IP "10.1.2.256"/);
    expect(assertIPv4Prefix('10.0.0.0/8')).to.equal('10.0.0.0/8');
    expect(assertIPv4Prefix('default')).to.equal('default');
    for (const bad of ['10.0.0.0/33', '10.0.0.0', '10.0.0.0/8/1', '10.0.0.0/x', 'fd00::/8']) {
      expect(() => assertIPv4Prefix(bad), bad).to.throw(InvalidNetworkValueError);
    }
    expect(assertMac('0a:1b:2c:3d:4e:5f')).to.equal('0a:1b:2c:3d:4e:5f');
    expect(() => assertMac('0a:1b:2c:3d:4e')).to.throw(/MAC/);
    expect(assertMtu(1500)).to.equal(1500);
    expect(() => assertMtu(67)).to.throw(/MTU/);
    expect(() => assertMtu(1500.5)).to.throw(/MTU/);
  });
});
