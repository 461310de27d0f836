import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AGENT_OPTIONS, agentSocketPath, loadAgentConfig } from './agent.js';
import { formatDuration, parseDuration } from './duration.js';
import { loadOperatorConfig } from './operator.js';
import { buildCommand, ConfigError } from './options.js';

describe('Go durations', () => {
  const good: [string, number][] = [
    ['15m', 900_000],
    ['2s', 2_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['300ms', 300],
    ['0', 0],
    ['1m0.5s', 60_500],
    ['-2s', -2_000],
    ['10us', 0.01],
  ];
  for (const [text, ms] of good) it(`${text} = ${ms} ms`, () => expect(parseDuration(text)).to.be.closeTo(ms, 1e-9));

  it('refuses malformed durations saying why', () => {
    expect(() => parseDuration('15')).to.throw(/"15": missing unit/);
    expect(() => parseDuration('5d')).to.throw(/unknown unit "d"/);
    expect(() => parseDuration('')).to.throw(/invalid duration ""/);
    expect(() => parseDuration('m')).to.throw(/missing number/);
    expect(() => parseDuration('1h 30m')).to.throw(/invalid duration/);
  });

  it('formats the Go way', () => {
    expect([0, 2_000, 900_000, 5_400_000, 1_500].map(formatDuration)).to.deep.equal(['0s', '2s', '15m', '1h30m', '1.5s']);
  });
});

describe('agent and operator configuration', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cilium-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('agent defaults are upstream\'s', () => {
    const c = loadAgentConfig([], {});
    expect(c).to.deep.include({
      'cluster-name': 'default',
      'cluster-id': 0,
      'identity-allocation-mode': 'crd',
      'enable-policy': 'default',
      'allow-localhost': 'auto',
      'bpf-root': '/sys/fs/bpf',
      'state-dir': '/var/run/cilium',
      'prometheus-serve-addr': ':9962',
      'agent-health-port': 9879,
      labels: [],
      'identity-change-grace-period': 5_000,
      'routing-mode': 'tunnel',
      'tunnel-protocol': 'vxlan',
      'tunnel-port': 8472,
      'enable-ipv4-masquerade': 'true',
      'ipv4-native-routing-cidr': '',
      mtu: 0,
    });
    expect(c['label-prefix-file']).to.equal(undefined);
    expect(agentSocketPath(c), 'socket-path defaults to <state-dir>/cilium.sock').to.equal('/var/run/cilium/cilium.sock');
    expect(agentSocketPath(loadAgentConfig(['--state-dir', '/run/x'], {}))).to.equal('/run/x/cilium.sock');
    expect(c['node-name']).to.be.a('string').and.not.equal('');
  });

  it('operator defaults are upstream\'s', () => {
    expect(loadOperatorConfig([], {})).to.deep.include({
      'cluster-pool-ipv4-cidr': ['10.0.0.0/8'],
      'cluster-pool-ipv4-mask-size': 24,
      'identity-gc-interval': 900_000,
      'identity-heartbeat-timeout': 1_800_000,
      'identity-gc-rate-limit': 2500,
      'identity-gc-rate-interval': 60_000,
      'cilium-endpoint-gc-interval': 300_000,
      'nodes-gc-interval': 300_000,
      'leader-election-lease-duration': 15_000,
      'leader-election-renew-deadline': 10_000,
      'leader-election-retry-period': 2_000,
      'operator-api-serve-addr': 'localhost:9234',
      'operator-prometheus-serve-addr': ':9963',
    });
  });

  it('precedence: flag > env > config file > default', () => {
    const yaml = path.join(dir, 'cilium.yaml');
    writeFileSync(yaml, 'cluster-name: from-file\ncluster-id: 3\nenable-policy: never\nlabels: [k8s:team, "k8s:!job-name"]\n');
    const env = { CILIUM_CLUSTER_ID: '4', CILIUM_ENABLE_POLICY: 'always' };
    const c = loadAgentConfig(['--config', yaml, '--enable-policy', 'default'], env);
    expect(c['cluster-name']).to.equal('from-file');
    expect(c['cluster-id']).to.equal(4);
    expect(c['enable-policy']).to.equal('default');
    expect(c.labels).to.deep.equal(['k8s:team', 'k8s:!job-name']);
    expect(loadAgentConfig([], { CILIUM_CONFIG: yaml })['cluster-id'], 'config file named by env').to.equal(3);
  });

  it('node name from CILIUM_K8S_NODE_NAME or K8S_NODE_NAME, CILIUM_NODE_NAME first', () => {
    expect(loadAgentConfig([], { K8S_NODE_NAME: 'k' })['node-name']).to.equal('k');
    expect(loadAgentConfig([], { K8S_NODE_NAME: 'k', CILIUM_K8S_NODE_NAME: 'ck' })['node-name']).to.equal('ck');
    expect(loadAgentConfig([], { K8S_NODE_NAME: 'k', CILIUM_NODE_NAME: 'n' })['node-name']).to.equal('n');
    expect(loadAgentConfig(['--node-name', 'f'], { K8S_NODE_NAME: 'k' })['node-name']).to.equal('f');
  });

  it('--config-dir reads one file per option, as a mounted ConfigMap, over --config', () => {
    const cm = path.join(dir, 'config-map');
    const data = path.join(cm, '..2026_11_29_data');
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(data, 'cluster-name'), 'mesh-1\n');
    writeFileSync(path.join(data, 'identity-change-grace-period'), '10s');
    writeFileSync(path.join(data, 'labels'), 'k8s:app k8s:!pod-template-hash');
    writeFileSync(path.join(data, 'some-operator-only-key'), 'x');
    symlinkSync('..2026_11_29_data', path.join(cm, '..data'));
    for (const f of ['cluster-name', 'identity-change-grace-period', 'labels', 'some-operator-only-key']) symlinkSync(path.join('..data', f), path.join(cm, f));
    const yaml = path.join(dir, 'c.yaml');
    writeFileSync(yaml, 'cluster-name: from-yaml\ncluster-id: 7\n');
    const c = loadAgentConfig(['--config-dir', cm, '--config', yaml], {});
    expect(c['cluster-name']).to.equal('mesh-1');
    expect(c['cluster-id']).to.equal(7);
    expect(c['identity-change-grace-period']).to.equal(10_000);
    expect(c.labels).to.deep.equal(['k8s:app', 'k8s:!pod-template-hash']);
    expect(loadAgentConfig(['--config-dir', path.join(dir, 'missing')], {})['cluster-name'], 'missing dir = no values').to.equal('default');
  });

  it('list flags repeat and split on commas', () => {
    const c = loadOperatorConfig(['--cluster-pool-ipv4-cidr', '10.1.0.0/16,10.2.0.0/16', '--cluster-pool-ipv4-cidr', '10.3.0.0/16'], {});
    expect(c['cluster-pool-ipv4-cidr']).to.deep.equal(['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16']);
    expect(loadOperatorConfig([], { CILIUM_CLUSTER_POOL_IPV4_CIDR: '10.1.0.0/16 10.2.0.0/16' })['cluster-pool-ipv4-cidr']).to.have.length(2);
  });

  const bad: [string, () => unknown, RegExp][] = [
    ['cluster-id out of range', () => loadAgentConfig(['--cluster-id', '256'], {}), /option --cluster-id \(from flag\): "256" is not an integer in 0\.\.255/],
    ['cluster-id not a number', () => loadAgentConfig([], { CILIUM_CLUSTER_ID: 'one' }), /option --cluster-id \(from env CILIUM_CLUSTER_ID\): "one"/],
    ['kvstore mode', () => loadAgentConfig(['--identity-allocation-mode', 'kvstore'], {}), /option --identity-allocation-mode \(from flag\): "kvstore" is not supported by cilium-ts; use crd/],
    ['unknown mode', () => loadAgentConfig(['--identity-allocation-mode', 'etcd'], {}), /"etcd" is not one of crd, kvstore/],
    ['enable-policy', () => loadAgentConfig(['--enable-policy', 'sometimes'], {}), /option --enable-policy \(from flag\): "sometimes" is not one of default, always, never/],
    ['bad duration', () => loadAgentConfig(['--identity-change-grace-period', '5'], {}), /option --identity-change-grace-period \(from flag\): invalid duration "5": missing unit/],
    ['negative duration', () => loadOperatorConfig(['--identity-gc-interval', '-1m'], {}), /option --identity-gc-interval \(from flag\): "-1m" must be positive/],
    ['zero interval', () => loadOperatorConfig(['--nodes-gc-interval', '0'], {}), /must be positive/],
    ['cluster name', () => loadAgentConfig(['--cluster-name', 'Prod_1'], {}), /option --cluster-name \(from flag\): "Prod_1" must be/],
    ['listen address', () => loadAgentConfig(['--prometheus-serve-addr', '9962'], {}), /option --prometheus-serve-addr \(from flag\): "9962" is not host:port/],
    ['geneve', () => loadAgentConfig(['--tunnel-protocol', 'geneve'], {}), /option --tunnel-protocol \(from flag\): "geneve" is not supported by cilium-ts; use vxlan/],
    ['routing mode', () => loadAgentConfig(['--routing-mode', 'direct'], {}), /option --routing-mode \(from flag\): "direct" is not one of tunnel, native/],
    ['native routing cidr', () => loadAgentConfig(['--ipv4-native-routing-cidr', '10.0.0.0'], {}), /option --ipv4-native-routing-cidr \(from flag\): "10\.0\.0\.0" is not an IPv4 CIDR/],
    ['native routing cidr length', () => loadAgentConfig(['--ipv4-native-routing-cidr', '10.0.0.0/33'], {}), /option --ipv4-native-routing-cidr \(from flag\)/],
    ['unknown flag', () => loadAgentConfig(['--no-such-option', 'x'], {}), /unknown option '--no-such-option'/],
    ['missing value', () => loadAgentConfig(['--cluster-id'], {}), /option '--cluster-id <value>' argument missing/],
    ['mask size', () => loadOperatorConfig(['--cluster-pool-ipv4-mask-size', '31'], {}), /option --cluster-pool-ipv4-mask-size \(from flag\): "31" is not an integer in 1\.\.30/],
    ['mask wider than pool', () => loadOperatorConfig(['--cluster-pool-ipv4-cidr', '10.0.0.0/24', '--cluster-pool-ipv4-mask-size', '16'], {}), /option --cluster-pool-ipv4-mask-size: \/16 is wider/],
    ['bad cidr', () => loadOperatorConfig(['--cluster-pool-ipv4-cidr', '10.0.0/8'], {}), /option --cluster-pool-ipv4-cidr/],
    ['leader timings', () => loadOperatorConfig(['--leader-election-renew-deadline', '20s'], {}), /option --leader-election-lease-duration: must be longer than --leader-election-renew-deadline/],
  ];
  for (const [name, load, want] of bad) {
    it(`refuses ${name}, naming the option and reason`, () => {
      expect(load).to.throw(ConfigError, want);
    });
  }

  it('a config file value is checked and named with its file', () => {
    const yaml = path.join(dir, 'c.yaml');
    writeFileSync(yaml, 'cluster-id: 999\n');
    expect(() => loadAgentConfig(['--config', yaml], {})).to.throw(ConfigError, `option --cluster-id (from --config ${yaml}): "999"`);
    writeFileSync(yaml, '- a\n- b\n');
    expect(() => loadAgentConfig(['--config', yaml], {})).to.throw(ConfigError, /must be a YAML mapping/);
  });

  it('--help is not a configuration error: it reaches the entry point with exit code 0', () => {
    let caught: unknown;
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = () => true;
    try {
      loadAgentConfig(['--help'], {});
    } catch (err) {
      caught = err;
    } finally {
      process.stdout.write = write;
    }
    expect(caught).to.not.be.instanceOf(ConfigError);
    expect(caught).to.have.property('exitCode', 0);
  });

  it('--help lists every option with its env name and default', () => {
    const help = buildCommand('cilium-agent', AGENT_OPTIONS).helpInformation();
    for (const name of Object.keys(AGENT_OPTIONS)) expect(help).to.include(`--${name} <value>`);
    expect(help).to.include('CILIUM_IDENTITY_CHANGE_GRACE_PERIOD; default 5s');
    expect(help).to.include('CILIUM_K8S_NODE_NAME, K8S_NODE_NAME');
  });
});
