import { expect } from 'chai';
import { cidrCases } from '../test/fixtures/policies/cidr-cases.js';
import { isCidr, isLooseCidr } from './cidr.js';

describe('crds/cidr', () => {
  for (const [value, strict, loose] of cidrCases) {
    it(`${JSON.stringify(value)}: isCIDR() ${strict ? 'accepts' : 'refuses'}, format "cidr" ${loose ? 'accepts' : 'refuses'}`, () => {
      expect(isCidr(value), 'isCidr').to.equal(strict);
      expect(isLooseCidr(value), 'isLooseCidr').to.equal(loose);
    });
  }
});
