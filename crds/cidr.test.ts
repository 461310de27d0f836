import { expect } from 'chai';
import { cidrCases } from '../test/fixtures/policies/cidr-cases.js';
import { cidrPattern, isLooseCidr } from './cidr.js';

describe('crds/cidr', () => {
  // ajv compiles patterns with the u flag; the apiserver's RE2 reads this pattern the same way.
  const pattern = new RegExp(cidrPattern, 'u');

  for (const [value, formatCidr, matches] of cidrCases) {
    it(`${JSON.stringify(value)}: format "cidr" ${formatCidr ? 'accepts' : 'refuses'}, the pattern ${matches ? 'matches' : 'does not match'}`, () => {
      expect(isLooseCidr(value), 'isLooseCidr').to.equal(formatCidr);
      expect(pattern.test(value), 'cidrPattern').to.equal(matches);
    });
  }

  it('uses only syntax that RE2 and JavaScript read alike: no lookaround, backreference, lazy quantifier or shorthand class', () => {
    expect(cidrPattern).to.not.match(/\(\?|\\[0-9dDwWsSbB]|[*+?}]\?/);
  });
});
