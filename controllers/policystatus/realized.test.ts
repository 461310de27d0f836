import { expect } from 'chai';
import fc from 'fast-check';
import {
  decodeRealized,
  encodeRealized,
  enforcedCondition,
  MAX_ERROR_LENGTH,
  MAX_REPORT_BYTES,
  SHORT_ERROR_LENGTH,
  summarizeEnforcement,
  TRUNCATED_KEY,
  type NodeReport,
  type RealizedReport,
} from './realized.js';

describe('policy realized reports', () => {
  it('round-trips through the annotation, sorted by uid, without absent errors', () => {
    const report: RealizedReport = new Map([
      ['uid-b', { generation: 3, error: 'rule spec.ingress[0]: boom' }],
      ['uid-a', { generation: 1 }],
    ]);
    const text = encodeRealized(report);
    expect(text).to.equal('{"uid-a":{"g":1},"uid-b":{"g":3,"e":"rule spec.ingress[0]: boom"}}');
    expect(decodeRealized(text)).to.deep.equal(report);
  });

  it('round-trips any report (property)', () => {
    const entry = fc.record({ generation: fc.nat(), error: fc.option(fc.string({ maxLength: MAX_ERROR_LENGTH }), { nil: undefined }) });
    fc.assert(
      fc.property(fc.dictionary(fc.uuid(), entry), (d) => {
        const report: RealizedReport = new Map(Object.entries(d).map(([k, v]) => [k, v.error === undefined ? { generation: v.generation } : { generation: v.generation, error: v.error }]));
        expect(decodeRealized(encodeRealized(report))).to.deep.equal(report);
      }),
    );
  });

  it('truncates long errors', () => {
    const decoded = decodeRealized(encodeRealized(new Map([['u', { generation: 1, error: 'x'.repeat(1000) }]])));
    expect((decoded as RealizedReport).get('u')?.error).to.have.length(MAX_ERROR_LENGTH);
  });

  const failing = (count: number): RealizedReport =>
    new Map(Array.from({ length: count }, (_, i) => [`00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, { generation: 1, error: 'e'.repeat(MAX_ERROR_LENGTH) }]));

  it('shortens errors when the full ones do not fit the annotation budget', () => {
    const report = failing(1000);
    const text = encodeRealized(report);
    expect(Buffer.byteLength(text)).to.be.at.most(MAX_REPORT_BYTES);
    const decoded = decodeRealized(text) as RealizedReport;
    expect(decoded.size, 'nothing left out').to.equal(1000);
    expect(decoded.has(TRUNCATED_KEY)).to.equal(false);
    expect([...decoded.values()].every((r) => r.error?.length === SHORT_ERROR_LENGTH)).to.equal(true);
  });

  it('leaves out what still does not fit, and the operator counts what is left out as failed', () => {
    const report = failing(5000);
    for (const uid of [...report.keys()].slice(0, 10)) report.set(uid, { generation: 1 });
    const text = encodeRealized(report);
    expect(Buffer.byteLength(text)).to.be.at.most(MAX_REPORT_BYTES);
    const decoded = decodeRealized(text) as RealizedReport;
    const kept = decoded.size - 1;
    expect(kept).to.be.within(1000, 4999);
    expect(decoded.get(TRUNCATED_KEY)?.error).to.equal(`report truncated to ${MAX_REPORT_BYTES} bytes: ${5000 - kept} of 5000 policies left out`);
    const [first, last] = [[...report.keys()][0] as string, [...report.keys()][4999] as string];
    expect(summarizeEnforcement(first, 1, [{ node: 'n1', report: decoded }]), 'a kept policy counts').to.include({ enforcing: 1, stale: 0 });
    const omitted = summarizeEnforcement(last, 1, [{ node: 'n1', report: decoded }]);
    expect(omitted.enforcing).to.equal(0);
    expect(omitted.failed).to.deep.equal([{ node: 'n1', reason: `not in its report: report truncated to ${MAX_REPORT_BYTES} bytes: ${5000 - kept} of 5000 policies left out` }]);
    expect(encodeRealized(report), 'the same report, the same string').to.equal(text);
  });

  for (const [text, field] of [
    ['not json', /not JSON/],
    ['[]', /must be an object of policy uid/],
    ['{"u":1}', /\["u"\]: must be an object/],
    ['{"u":{"g":"1"}}', /\["u"\]\.g: must be a generation/],
    ['{"u":{"g":-1}}', /\["u"\]\.g: must be a generation/],
    ['{"u":{"g":1,"e":5}}', /\["u"\]\.e: must be a string/],
  ] as const) {
    it(`refuses ${text}, naming the field`, () => {
      const r = decodeRealized(text);
      expect(r).to.be.instanceOf(Error);
      expect((r as Error).message).to.match(field);
    });
  }
});

describe('summarizeEnforcement / enforcedCondition', () => {
  const ok = (g: number): RealizedReport => new Map([['p', { generation: g }]]);
  const failed = (g: number, e: string): RealizedReport => new Map([['p', { generation: g, error: e }]]);

  it('counts enforcing, failed, stale and malformed nodes', () => {
    const nodes: NodeReport[] = [
      { node: 'n1', report: ok(2) },
      { node: 'n2', report: ok(1) },
      { node: 'n4', report: failed(2, 'policy map full') },
      { node: 'n3', report: new Error('annotation: not JSON') },
      { node: 'n5', report: undefined },
      { node: 'n6', report: failed(1, 'old failure') },
    ];
    const s = summarizeEnforcement('p', 2, nodes);
    expect(s).to.deep.equal({
      enforcing: 1,
      total: 6,
      failed: [
        { node: 'n3', reason: 'annotation: not JSON' },
        { node: 'n4', reason: 'policy map full' },
      ],
      stale: 3,
    });
    expect(enforcedCondition(2, s)).to.deep.equal({
      type: 'Enforced',
      status: 'False',
      reason: 'EnforcementFailed',
      message: '1/6 nodes enforce generation 2; 2 failed: n3: annotation: not JSON; n4: policy map full; 3 pending',
    });
  });

  it('is True only when every node enforces the generation, Unknown while pending or without nodes', () => {
    expect(enforcedCondition(1, summarizeEnforcement('p', 1, [{ node: 'a', report: ok(1) }, { node: 'b', report: ok(1) }]))).to.include({ status: 'True', message: '2/2 nodes enforce generation 1' });
    expect(enforcedCondition(2, summarizeEnforcement('p', 2, [{ node: 'a', report: ok(1) }]))).to.include({ status: 'Unknown', reason: 'EnforcementPending' });
    expect(enforcedCondition(1, summarizeEnforcement('p', 1, []))).to.include({ status: 'Unknown', reason: 'NoNodes' });
  });

  it('names at most 10 failed nodes and counts the rest', () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => ({ node: `node-${String(i).padStart(4, '0')}`, report: i < 25 ? failed(1, 'e') : ok(1) }));
    const c = enforcedCondition(1, summarizeEnforcement('p', 1, nodes));
    expect(c.message).to.match(/^975\/1000 nodes enforce generation 1; 25 failed: node-0000: e;/);
    expect(c.message).to.include('node-0009: e; and 15 more');
    expect(c.message).not.to.include('node-0010');
  });
});
