// Upstream's cilium-dbg v1.20.2 and our CLI print the same bytes for the same API answers: both
// ask a fixture agent serving controllers/cli/testdata, command by command. This is what makes the
// golden files of controllers/cli/format/golden.test.ts upstream's layouts.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FixtureAgent, type FixtureAnswer } from '../../../controllers/cli/testing/fixture-agent.js';
import { runCaptured } from '../../../controllers/cli/testing/run-captured.js';
import type { IdentityModel } from '../../../controllers/cli/models.js';
import { defaultBinDir, repoRoot } from '../../../hack/controlplane/paths.js';
import { runWithExitCode } from '../../envtest/command.js';

const TESTDATA = path.join(repoRoot, 'controllers', 'cli', 'testdata');
const CILIUM_DBG = path.join(defaultBinDir(), 'cilium-dbg');

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(path.join(TESTDATA, name), 'utf8'));
}

describe('our cilium CLI and upstream cilium-dbg on the same API answers', function () {
  this.timeout(60_000);
  let agent: FixtureAgent | undefined;
  let host: string;

  before(async function () {
    if (!existsSync(CILIUM_DBG)) throw new Error(`${CILIUM_DBG} is missing: build it with \`bash hack/install-tools.sh all\``);
    const identities = fixture('identity-list.json') as IdentityModel[];
    const routes: Record<string, FixtureAnswer> = {
      '/v1/endpoint': { body: fixture('endpoint-list.json') },
      '/v1/identity': { body: identities },
      '/v1/healthz': { body: fixture('status.json') },
      '/v1/ip': { body: fixture('ip-list.json') },
      '/v1/policy': { body: { revision: 7, policy: '[\n  {\n    "endpointSelector": {}\n  }\n]' } },
      '/v1/policy/selectors': { body: fixture('selectors.json') },
      '/v1/map': { body: fixture('map-list.json') },
      '/v1/map/cilium_lxc': { body: (fixture('map-list.json') as { maps: unknown[] }).maps[0] },
      '/v1/endpoint/3459': { body: (fixture('endpoint-list.json') as unknown[])[0] },
      '/v1/endpoint/42': { status: 404, body: 'endpoint 42 not found' },
    };
    // 16777217 stays unknown to show both tools' fallback to the identity's name.
    for (const i of identities) if (i.id !== 16777217) routes[`/v1/identity/${i.id}`] = { body: i };
    agent = await FixtureAgent.start(routes);
    host = `unix://${agent.socketPath}`;
  });
  after(() => agent?.stop());

  const SAME_TEXT = [
    ['endpoint', 'list'],
    ['endpoint', 'list', '--no-headers'],
    ['identity', 'list'],
    ['identity', 'get', '46212'],
    ['ip', 'list'],
    ['ip', 'list', '-n', '-v'],
    ['policy', 'get'],
    ['policy', 'selectors'],
    ['map', 'list'],
    ['map', 'get', 'cilium_lxc'],
    ['status'],
    ['status', '--verbose'],
  ];
  // The two tools read the clock a moment apart: "ago" columns may differ by a second.
  const sameClock = (text: string): string => text.replace(/\b[\dhms]+ ago\b/g, '<t> ago');
  for (const argv of SAME_TEXT) {
    it(`prints the same for \`${argv.join(' ')}\``, async () => {
      const upstream = await runWithExitCode(CILIUM_DBG, [...argv, '-H', host]);
      const mine = await runCaptured([...argv, '-H', host]);
      expect(upstream.code, upstream.stderr).to.equal(0);
      expect(mine.code, mine.stderr).to.equal(0);
      expect(sameClock(mine.stdout)).to.equal(sameClock(upstream.stdout));
    });
  }

  it('fails like upstream for an unknown endpoint: exit code 1, one error line', async () => {
    const upstream = await runWithExitCode(CILIUM_DBG, ['endpoint', 'get', '42', '-H', host]);
    const mine = await runCaptured(['endpoint', 'get', '42', '-H', host]);
    expect([mine.code, upstream.code]).to.deep.equal([1, 1]);
    expect(mine.stderr).to.match(/^Error: Cannot get endpoint 42: endpoint 42 not found \(HTTP 404\)\n$/);
    expect(upstream.stderr).to.match(/^Error: Cannot get endpoint 42: /);
  });
});
