// Our hubble CLI prints the flows of testdata/flows.jsonl (written by the upstream CLI's -o json
// from our server) exactly as upstream's printer does: the goldens are upstream v1.20.2's output
// for each case (test/integration/hubble/cli.test.ts checks them against the binary).
import { expect } from 'chai';
import { FLOWS_FILE, GOLDEN_CASES, readTestdata as read, runOurHubble as runOurs } from './testing.js';

describe('hubble CLI printer (compact, dict, table, json) against upstream goldens', () => {
  for (const c of GOLDEN_CASES) {
    it(`observe ${c.args.join(' ')}`, async () => {
      const out = await runOurs(['observe', '--input-file', FLOWS_FILE, ...c.args]);
      expect(out.code, out.stderr).to.equal(0);
      expect(out.stdout).to.equal(read(`${c.golden}.txt`));
      expect(out.stderr).to.equal(read(`${c.golden}.stderr.txt`));
    });
  }

  it('refuses what upstream refuses, with its words', async () => {
    expect(await runOurs(['observe', '--input-file', FLOWS_FILE, '-o', 'table', '-f'])).to.deep.include({ code: 1, stderr: 'table output format is not compatible with follow mode\n' });
    expect(await runOurs(['observe', '--input-file', FLOWS_FILE, '-o', 'yaml'])).to.deep.include({ code: 1, stderr: 'invalid output format: yaml\n' });
    expect(await runOurs(['observe', '--input-file', FLOWS_FILE, '--first', '2', '--all'])).to.deep.include({ code: 1, stderr: 'cannot set both --first and --all\n' });
    expect(await runOurs(['observe', '--input-file', FLOWS_FILE, '-o', 'compact', '--field-mask', 'time'])).to.deep.include({ code: 1, stderr: 'compact output format is not compatible with custom field mask\n' });
    // Nothing listens on port 1: one line naming the server, exit 1.
    expect(await runOurs(['observe', '--server', '127.0.0.1:1', '--timeout', '300ms'])).to.deep.include({ code: 1, stderr: "failed to connect to '127.0.0.1:1': Failed to connect before the deadline\n" });
    expect(await runOurs(['status', '--timeout', '1fortnight'])).to.deep.include({ code: 1 });
  });
});
