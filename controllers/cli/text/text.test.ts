import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { goDurationSeconds, goHex, goHexWidth, jsonOutput } from './go-format.js';
import { identityName, printableLabels } from './labels.js';
import { tabwrite } from './tabwriter.js';

interface GoCase {
  text: string;
  minwidth: number;
  padding: number;
  go: string;
}

describe('cli text helpers', () => {
  // Inputs and outputs recorded from Go's text/tabwriter (flags 0, pad ' ').
  const goCases = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'testdata', 'tabwriter-go.json'), 'utf8')) as GoCase[];

  it("lays out tables exactly as Go's text/tabwriter", () => {
    expect(goCases.length).to.be.greaterThan(20);
    for (const c of goCases) expect(tabwrite(c.text, c), JSON.stringify(c.text)).to.equal(c.go);
  });

  it('ends a column block at a line without that cell', () => {
    expect(tabwrite('a\tbbbb\tc\nx\n\tlong-cell\ty\n', { minwidth: 0, padding: 1 })).to.equal('a bbbb c\nx\n long-cell y\n');
  });

  it('prints Go fmt numbers and durations', () => {
    expect(goHex(0)).to.equal('0x0');
    expect(goHex(0xe6866e21)).to.equal('0xe6866e21');
    expect(goHexWidth(0x1b, 2)).to.equal('0x1b');
    expect(goHexWidth(0, 4)).to.equal('0x0000');
    expect(goDurationSeconds(0)).to.equal('0s');
    expect(goDurationSeconds(45.9)).to.equal('45s');
    expect(goDurationSeconds(90)).to.equal('1m30s');
    expect(goDurationSeconds(7205)).to.equal('2h0m5s');
  });

  it('writes -o json as Go json.MarshalIndent plus the empty line upstream adds', () => {
    expect(jsonOutput({ a: '<x>&', b: [] })).to.equal('{\n  "a": "\\u003cx\\u003e\\u0026",\n  "b": []\n}\n\n');
  });

  it('prints labels parsed, one per key, sorted bytewise', () => {
    expect(printableLabels(['k8s:b=2', 'k8s:B=1', '$host', 'k8s:b=3', 'noseparator', 'cidr:fd00--0/8', 'k8s:'])).to.deep.equal(['cidr:fd00::/8', 'k8s:B=1', 'k8s:b=3', 'reserved:host', 'unspec:noseparator']);
    expect(printableLabels(undefined)).to.deep.equal([]);
  });

  it('names reserved identities and prints others as numbers', () => {
    expect(identityName(2)).to.equal('world');
    expect(identityName(7)).to.equal('kube-apiserver');
    expect(identityName(46212)).to.equal('46212');
  });
});
