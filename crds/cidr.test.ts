import { expect } from 'chai';
import { isCidr } from './cidr.js';

describe('crds/cidr isCidr', () => {
  const cases: [string, boolean][] = [
    ['10.0.0.0/8', true],
    ['10.0.0.1/24', true], // host bits set: Go's ParseCIDR accepts it, so does the apiserver
    ['0.0.0.0/0', true],
    ['192.0.2.1/32', true],
    ['2001:db8::/32', true],
    ['::/0', true],
    ['fd00::1/128', true],
    ['::ffff:10.0.0.0/104', true],
    ['10.0.0.0/33', false],
    ['fd00::/129', false],
    ['10.0.0.0', false],
    ['10.0.0.0/', false],
    ['/8', false],
    ['300.0.0.0/8', false],
    ['010.0.0.0/8', false],
    ['10.0.0.0/8 ', false],
    ['10.0.0.0/+8', false],
    ['10.0.0.0/8/8', false],
    ['fe80::1%eth0/64', false],
    ['example.com/24', false],
    ['', false],
  ];
  for (const [value, ok] of cases) {
    it(`${JSON.stringify(value)} is ${ok ? '' : 'not '}a CIDR`, () => {
      expect(isCidr(value)).to.equal(ok);
    });
  }
});
