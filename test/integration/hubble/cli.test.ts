// Our hubble CLI against upstream's (v1.20.2, .local/bin/hubble-upstream): the printer goldens
// are still upstream's output, every filter flag makes upstream's FlowFilters, and both CLIs
// print the same against our relay and our node server: observe (filters, -o json, compact),
// status and list nodes, including after a node went down.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { FILTER_FLAGS } from '../../../controllers/hubble/cli/filters.js';
import { FLOWS_FILE, GOLDEN_CASES, readTestdata, runOurHubble, type CliRun } from '../../../controllers/hubble/cli/testing.js';
import { defaultBinDir } from '../../../hack/controlplane/paths.js';
import { runWithExitCode } from '../../envtest/command.js';
import { pollUntil } from '../../envtest/poll.js';
import { RelayCluster } from './relay-nodes.js';

const HUBBLE = path.join(defaultBinDir(), 'hubble-upstream');

async function upstream(args: readonly string[]): Promise<CliRun> {
  const r = await runWithExitCode(HUBBLE, [...args]);
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Both CLIs with the same arguments. */
async function both(args: readonly string[]): Promise<[CliRun, CliRun]> {
  return [await runOurHubble(args), await upstream(args)];
}

// Every filter flag, alone and combined as upstream combines them (either-side flags make two filters).
const FILTER_CASES: string[][] = [
  ['--pod', 'shop/cart', '--not', '--verdict', 'DROPPED', '-t', 'drop', '--identity', 'world', '--to-port', '80'],
  ['-n', 'kube-system', '--to-pod', 'x', '-t', 'trace:to-endpoint', '--tcp-flags', 'syn,ack'],
  ['--ip', '10.0.0.1', '--protocol', 'tcp', '-4', '--traffic-direction', 'ingress', '--node-name', 'node-1', '-l', 'app=x'],
  ['--from-namespace', 'a', '--to-namespace', 'b', '--to-pod', 'c', '--drop-reason-desc', 'POLICY_DENIED', '--not', '--from-ip', '1.2.3.4'],
  ['-A', '--verdict', 'FORWARDED', '--verdict', 'DROPPED', '--from-label', 'k8s:app=a', '--to-label', 'reserved:world'],
  ['--to-workload', 'Deployment/foo', '--reply', '--identity', '0x10', '--http-header', 'a:b', '--interface', 'eth0'],
  ['--from-workload', 'bar', '--workload', 'Deployment/', '--not-reply', '--from-identity', '5000', '--uuid', 'u-1'],
  ['--fqdn', '*.cilium.io', '--from-port', '53', '--snat-ip', '10.1.0.0/16', '--ipv6', '--ip-version', 'v4', '--encrypted'],
  ['--from-fqdn', 'a.io', '--to-fqdn', 'b.io', '--service', 'kube-system/dns', '--port', '8080', '--unencrypted', '--trace-id', 't1', '--ip-trace-id', '7'],
  ['--from-service', 's1', '--to-service', 's2', '--http-status', '5+', '--http-method', 'get', '--http-path', '/a', '--http-url', 'http://x', '--node-label', 'k=v'],
  ['--from-pod', 'p', '--to-ip', '10.0.0.0/8', '--cluster', 'c1', '--from-cluster', 'c2', '--to-cluster', 'c3', '--cel-expression', "_flow.verdict == 'DROPPED'", '-t', 'policy-verdict', '-t', '130:agent-started'],
  ['--from-all-namespaces', '--to-all-namespaces', '--type', 'agent:policy-updated', '--type', 'l7', '--to-identity', 'kube-apiserver'],
  ['--since', '2024-01-02T03:04:05.123Z', '--until', '2024-01-03', '--first', '5'],
  ['--all', '--allowlist', '{"source_pod":["a/b"]}', '--denylist', '{"verdict":["DROPPED"]}{"protocol":["udp"]}'],
  // refused, with upstream's words
  ['-n', 'kube-system', '--from-pod', 'x'],
  ['--verdict', 'NOPE'],
  ['--not'],
  ['--not', '--not', '--pod', 'x'],
  ['--identity', 'foo'],
  ['--tcp-flags', 'syn,xyz'],
  ['--traffic-direction', 'up'],
  ['--first', '3', '--last', '2'],
  ['--type', 'trace:bogus'],
  ['--label', 'a', '--from-label', 'b'],
  ['--ip-trace-id', '0'],
  ['--http-header', 'nocolon'],
  ['--drop-reason-desc', 'NOPE'],
];

describe('hubble CLI: ours against upstream v1.20.2', function () {
  this.timeout(120_000);

  before(() => {
    if (!existsSync(HUBBLE)) throw new Error(`${HUBBLE} is missing: build it with \`bash hack/install-tools.sh all\``);
  });

  it('the printer goldens are what upstream prints for testdata/flows.jsonl', async () => {
    for (const c of GOLDEN_CASES) {
      const up = await upstream(['observe', '--input-file', FLOWS_FILE, ...c.args]);
      expect(up.code, c.golden).to.equal(0);
      expect(up.stdout, c.golden).to.equal(readTestdata(`${c.golden}.txt`));
      expect(up.stderr, c.golden).to.equal(readTestdata(`${c.golden}.stderr.txt`));
    }
  });

  it('every filter flag makes upstream`s allowlist/denylist (--print-raw-filters), and refusals match', async () => {
    const used = new Set(FILTER_CASES.flat().filter((a) => a.startsWith('--')).map((a) => a.slice(2)));
    const shorts: Record<string, string> = { '-t': 'type', '-l': 'label', '-n': 'namespace', '-A': 'all-namespaces', '-4': 'ipv4', '-6': 'ipv6' };
    for (const a of FILTER_CASES.flat()) if (shorts[a]) used.add(shorts[a]);
    expect(FILTER_FLAGS.filter((f) => !used.has(f)), 'filter flags no case uses').to.deep.equal([]);
    for (const args of FILTER_CASES) {
      const [ours, theirs] = await both(['observe', '--print-raw-filters', ...args]);
      expect(ours, args.join(' ')).to.deep.equal(theirs);
    }
  });

  describe('against our relay and our node server', () => {
    const cluster = new RelayCluster();
    let relay: string[];
    let server: string[];

    before(async function () {
      this.timeout(60_000);
      await cluster.start();
      relay = ['--server', cluster.relayAddress];
      server = ['--server', `unix://${cluster.nodes[0]!.observer.opts.settings.socketPath}`];
      cluster.ingestInterleaved(8, Date.now() - 30_000);
    });

    after(async function () {
      this.timeout(30_000);
      await cluster.destroy();
    });

    it('observe: the same flows and lines (compact, json, filters, node names)', async () => {
      for (const target of [relay, server]) {
        for (const args of [
          [],
          ['--last', '5', '--print-node-name'],
          ['-o', 'json', '--last', '100', '--verdict', 'DROPPED'],
          ['-o', 'jsonpb', '--to-port', '8004', '--not', '--from-identity', '5000'],
          ['-o', 'dict', '--last', '3', '--from-pod', 'shop/client-1'],
          ['-o', 'table', '--first', '4', '--type', 'trace'],
          ['--since', '1h', '--node-name', cluster.nodeName('b'), '--port', '8003'],
        ]) {
          const [ours, theirs] = await both(['observe', ...target, ...args]);
          expect(theirs.code, theirs.stderr).to.equal(0);
          expect(ours, [...target, ...args].join(' ')).to.deep.equal(theirs);
        }
      }
      const json = (await upstream(['observe', ...relay, '-o', 'json', '--all'])).stdout.trim().split('\n');
      expect(json).to.have.length(16);
      expect(new Set(json.map((l) => (JSON.parse(l) as { node_name: string }).node_name))).to.deep.equal(new Set([cluster.nodeName('a'), cluster.nodeName('b')]));
    });

    it('status and list nodes print the same', async () => {
      for (const target of [relay, server]) {
        for (const output of ['compact', 'dict', 'json', 'table']) {
          const [ours, theirs] = await both(['status', ...target, '-o', output]);
          expect(theirs.code, theirs.stderr).to.equal(0);
          expect(normalizeUptime(ours.stdout), `status -o ${output}`).to.equal(normalizeUptime(theirs.stdout));
        }
        for (const output of ['table', 'wide', 'json']) {
          const [ours, theirs] = await both(['list', 'nodes', ...target, '-o', output]);
          expect(theirs.code, theirs.stderr).to.equal(0);
          expect(normalizeAge(ours.stdout), `list nodes -o ${output}`).to.equal(normalizeAge(theirs.stdout));
        }
      }
      expect((await runOurHubble(['list', 'nodes', ...relay])).stdout).to.match(new RegExp(`^${cluster.nodeName('b')}\\s+Connected\\s`, 'm'));
    });

    it('with a node down: the unavailable node in status, list nodes and observe', async () => {
      await cluster.stopNode(1);
      const b = cluster.nodeName('b');
      await pollUntil('node b unavailable to the relay', () => cluster.relay.peers.list().find((p) => p.name === b)?.available === false, 15_000);
      const [ours, theirs] = await both(['status', ...relay]);
      expect(normalizeUptime(ours.stdout)).to.equal(normalizeUptime(theirs.stdout));
      expect(ours.stdout).to.contain(`Connected Nodes: 1/2\nUnavailable Nodes: 1\n  - ${b}\n`);
      const [ol, tl] = await both(['list', 'nodes', ...relay]);
      expect(normalizeAge(ol.stdout)).to.equal(normalizeAge(tl.stdout));
      expect(ol.stdout).to.match(new RegExp(`^${b}\\s+Unavailable\\s`, 'm'));
      const [oo, to] = await both(['observe', ...relay, '--last', '3']);
      expect(oo.stdout).to.equal(to.stdout);
      expect(oo.stderr.replace(/^.*\[[^\]]*\]: /gm, '')).to.equal(`1 nodes are unavailable: ${b}\n`);
      expect(to.stderr.replace(/^.*\[[^\]]*\]: /gm, '')).to.equal(`1 nodes are unavailable: ${b}\n`);
    });
  });
});

// Uptime and the rates derived from it move between two runs; the rest must be equal.
function normalizeUptime(text: string): string {
  return text
    .replace(/"uptime_ns":"\d+"/g, '"uptime_ns":"_"')
    .replace(/\b\d+(\.\d+)?(ns|µs|ms|s)\b|\b\d+m[\d.]+s\b|\b\d+h\d+m[\d.]+s\b/g, '_')
    .replace(/Flows\/s: [\d.]+/, 'Flows/s: _')
    .replace(/ +/g, ' ');
}

function normalizeAge(text: string): string {
  return text
    .replace(/"uptime_ns": "\d+"/g, '"uptime_ns": "_"')
    .replace(/\b\d+(m|h)?[\d.]*s\b/g, '_')
    .replace(/ {2,}\d+\.\d\d {2,}/g, ' _ ')
    .replace(/ +/g, ' ');
}
