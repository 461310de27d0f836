import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_SOCKET_PATH } from '../agent/api/client.js';
import { formatEndpointList } from './format/endpoints.js';
import type { EndpointModel } from './models.js';
import { resolveTarget } from './target.js';
import { FixtureAgent } from './testing/fixture-agent.js';
import { runCaptured, type CapturedRun } from './testing/run-captured.js';

const TESTDATA = path.join(import.meta.dirname, 'testdata');
const endpoints = JSON.parse(readFileSync(path.join(TESTDATA, 'endpoint-list.json'), 'utf8')) as EndpointModel[];
const events = JSON.parse(readFileSync(path.join(TESTDATA, 'monitor-events.json'), 'utf8')) as unknown[];

function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CapturedRun> {
  return runCaptured(argv, { env, now: new Date('2026-11-29T18:01:00Z') });
}

describe('cilium CLI commands', () => {
  let agent: FixtureAgent;
  let host: string;

  before(async () => {
    agent = await FixtureAgent.start(
      {
        '/v1/endpoint': { body: endpoints },
        '/v1/endpoint/3459': { body: endpoints[0] },
        '/v1/endpoint/42': { status: 404, body: 'endpoint 42 not found' },
        '/v1/healthz': { body: { cilium: { state: 'Failure', msg: 'policy loop not synced' }, nodeMonitor: { cpus: 2, npages: 64, pagesize: 4096 } } },
        '/v1/identity/4': { status: 404, body: 'identity 4 not found' },
      },
      events,
    );
    host = `unix://${agent.socketPath}`;
  });
  after(() => agent.stop());

  it('lists endpoints as the formatter lays them out, and as JSON with -o json', async () => {
    const text = await cli(['endpoint', 'list', '-H', host]);
    expect(text).to.deep.equal({ code: 0, stdout: formatEndpointList(endpoints), stderr: '' });
    const json = await cli(['-H', host, 'endpoint', 'list', '-o', 'json']);
    expect(json.code).to.equal(0);
    expect((JSON.parse(json.stdout) as EndpointModel[]).map((e) => e.id)).to.deep.equal([7, 164, 2001, 3459]);
    expect(json.stdout.endsWith('}\n]\n\n')).to.equal(true);
  });

  it('prints endpoint get as a JSON list, as upstream does without -o', async () => {
    const run = await cli(['endpoint', 'get', '3459', '-H', host]);
    expect(run.code).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.equal([endpoints[0]]);
  });

  it('fails with one line naming an unknown endpoint, exit code 1', async () => {
    expect(await cli(['endpoint', 'get', '42', '-H', host])).to.deep.equal({ code: 1, stdout: '', stderr: 'Error: Cannot get endpoint 42: endpoint 42 not found (HTTP 404)\n' });
  });

  it('exits 1 on a missing argument and 0 on --help, as commander reports them', async () => {
    expect(await cli(['endpoint', 'get'])).to.deep.equal({ code: 1, stdout: '', stderr: "error: missing required argument 'id'\n" });
    const help = await cli(['bpf', 'policy', 'get', '--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^Usage: cilium bpf policy get \[options\] \[endpoint\]/);
  });

  it('refuses a malformed endpoint id before asking the agent', async () => {
    const before = agent.requests.length;
    const run = await cli(['endpoint', 'get', 'abc', '-H', host]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(/^Error: Cannot parse endpoint id "abc": .*abc.*\n$/);
    expect(agent.requests.length).to.equal(before);
  });

  it('refuses a -H that is not a unix socket, naming the flag', async () => {
    const run = await cli(['identity', 'list', '-H', 'tcp://127.0.0.1:9876']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(/^Error: -H\/--host "tcp:\/\/127.0.0.1:9876": .*\n$/);
  });

  it('names the socket when nothing listens there', async () => {
    const run = await cli(['identity', 'list', '-H', 'unix:///nonexistent/cilium.sock']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(/^Error: Cannot get identities: .*unix:\/\/\/nonexistent\/cilium.sock is unreachable.*\n$/);
  });

  it('refuses output formats other than json, naming -o', async () => {
    const run = await cli(['identity', 'list', '-o', 'yaml', '-H', host]);
    expect(run).to.deep.equal({ code: 1, stdout: '', stderr: 'Error: -o/--output "yaml": only "json" is supported\n' });
  });

  it('prints status and exits 1 when the agent reports a failure', async () => {
    const run = await cli(['status', '-H', host]);
    expect(run.code).to.equal(1);
    expect(run.stdout).to.match(/^Cilium: +Failure {3}policy loop not synced$/m);
    expect(run.stdout).to.not.contain('Cluster health');
    expect(run.stderr).to.equal('Error: cilium agent is Failure: policy loop not synced\n');
  });

  it('streams monitor events with the banner, filtered by type and endpoint', async () => {
    const drops = await cli(['monitor', '-t', 'drop', '-H', host]);
    expect(drops.code).to.equal(0);
    expect(drops.stderr).to.equal('Listening for events on 2 CPUs with 64x4096 of shared memory\nPress Ctrl-C to quit\n');
    expect(drops.stdout.split('\n').filter(Boolean)).to.have.length(2);
    expect(drops.stdout).to.match(/^xx drop \(Policy denied\) flow 0x0 to endpoint 3459, /);
    const related = await cli(['monitor', '--related-to', '164', '-H', host]);
    expect(related.stdout).to.equal('-> endpoint 164 flow 0x0 , identity host->46212 state reply ifindex 0 orig-ip 0.0.0.0: 10.244.1.1 -> 10.244.1.87 icmp EchoReply\n');
    const bad = await cli(['monitor', '-t', 'bogus', '-H', host]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^Error: -t\/--type "bogus": unknown type/);
  });

  it('reports an unreadable pin directory with its path', async () => {
    const run = await cli(['bpf', 'endpoint', 'list', '--bpf-pin-dir', '/nonexistent/pins']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(/^Error: cannot read map \/nonexistent\/pins\/cilium_lxc: .*\n$/);
    const policy = await cli(['bpf', 'policy', 'get', 'x1', '--bpf-pin-dir', '/nonexistent/pins']);
    expect(policy.stderr).to.match(/^Error: Failed to parse endpointID "x1"/);
  });

  describe('--node and the local cluster', () => {
    let stateDir: string;

    beforeEach(() => {
      stateDir = mkdtempSync(path.join(os.tmpdir(), 'cilium-cli-nodes-'));
      mkdirSync(path.join(stateDir, 'nodes', 'n1'), { recursive: true });
      writeFileSync(path.join(stateDir, 'nodes', 'n1', 'node.json'), JSON.stringify({ name: 'n1', socket: agent.socketPath, bpfPinDir: '/sys/fs/bpf/cilium-ts-test/n1' }));
    });
    afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

    it("takes the node's socket and pin directory from node.json", async () => {
      const env = { CILIUM_TS_STATE_DIR: stateDir };
      expect(resolveTarget({ node: 'n1' }, env)).to.deep.equal({ socketPath: agent.socketPath, pinDir: '/sys/fs/bpf/cilium-ts-test/n1', node: 'n1' });
      expect(resolveTarget({ node: 'n1', bpfPinDir: '/x' }, env).pinDir).to.equal('/x');
      const run = await cli(['endpoint', 'list', '--node', 'n1'], env);
      expect(run.code).to.equal(0);
      expect(run.stdout).to.equal(formatEndpointList(endpoints));
    });

    it('names an unknown node and the nodes there are', async () => {
      const run = await cli(['endpoint', 'list', '--node', 'nope'], { CILIUM_TS_STATE_DIR: stateDir });
      expect(run.code).to.equal(1);
      expect(run.stderr).to.match(/^Error: --node "nope": no such node in .* \(known: n1\)\n$/);
    });

    it('uses the only local node when neither -H nor --node is given and the default socket is missing', function () {
      if (existsSync(DEFAULT_SOCKET_PATH)) this.skip();
      const env = { CILIUM_TS_STATE_DIR: stateDir };
      expect(resolveTarget({}, env).socketPath).to.equal(agent.socketPath);
      mkdirSync(path.join(stateDir, 'nodes', 'n2'));
      expect(resolveTarget({}, env).socketPath).to.equal(DEFAULT_SOCKET_PATH);
      expect(resolveTarget({}, { ...env, CILIUM_SOCK: '/run/x.sock' }).socketPath).to.equal('/run/x.sock');
    });
  });
});
