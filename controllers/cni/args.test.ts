import { expect } from 'chai';
import { parseArgs, parseCniArgs, parseCommand } from './args.js';
import { CNI_ERR, CniError } from './errors.js';

function refusal(f: () => unknown): CniError {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(CniError);
    return err as CniError;
  }
  throw new Error('expected a refusal');
}

const ADD_ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/var/run/netns/cni-1', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

describe('cni/args', () => {
  it('reads the command and refuses a missing or unknown one with code 4', () => {
    expect(parseCommand({ CNI_COMMAND: 'CHECK' })).to.equal('CHECK');
    expect(refusal(() => parseCommand({})).msg).to.equal('required env variables [CNI_COMMAND] missing');
    const e = refusal(() => parseCommand({ CNI_COMMAND: 'add' }));
    expect(e.code).to.equal(CNI_ERR.invalidEnvironment);
    expect(e.msg).to.equal('unknown CNI_COMMAND: add');
  });

  it('reads kubelet\'s CNI_ARGS', () => {
    const args = parseArgs('ADD', { ...ADD_ENV, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=1234-5678' });
    expect(args).to.deep.equal({
      command: 'ADD',
      containerId: 'c0ffee',
      netns: '/var/run/netns/cni-1',
      ifname: 'eth0',
      path: '/opt/cni/bin',
      pod: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'web-0', K8S_POD_INFRA_CONTAINER_ID: 'c0ffee', K8S_POD_UID: '1234-5678' },
    });
  });

  it('refuses unknown CNI_ARGS keys unless IgnoreUnknown is set, and malformed pairs', () => {
    expect(parseCniArgs('IgnoreUnknown=true;FOO=bar;K8S_POD_NAME=x')).to.deep.equal({ K8S_POD_NAME: 'x' });
    expect(refusal(() => parseCniArgs('FOO=bar')).details).to.contain('unknown key "FOO"');
    expect(refusal(() => parseCniArgs('IgnoreUnknown=0;FOO=bar')).details).to.contain('"FOO"');
    expect(refusal(() => parseCniArgs('K8S_POD_NAME')).details).to.contain('"K8S_POD_NAME" is not KEY=VALUE');
    expect(refusal(() => parseCniArgs('IgnoreUnknown=maybe')).details).to.contain('IgnoreUnknown');
    expect(parseCniArgs('')).to.deep.equal({});
  });

  it('requires per command what the spec requires: DEL may come without a netns', () => {
    const del = parseArgs('DEL', { ...ADD_ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' });
    expect(del.netns).to.equal('');
    const e = refusal(() => parseArgs('ADD', { ...ADD_ENV, CNI_NETNS: undefined, CNI_IFNAME: '' }));
    expect(e.code).to.equal(CNI_ERR.invalidEnvironment);
    expect(e.msg).to.equal('required env variables [CNI_NETNS CNI_IFNAME] missing');
    expect(refusal(() => parseArgs('CHECK', { CNI_PATH: '/x' })).msg).to.contain('CNI_CONTAINERID');
    expect(parseArgs('STATUS', { CNI_PATH: '/x' }).command).to.equal('STATUS');
  });

  it('names the variable holding a bad container id, interface name or netns path', () => {
    expect(refusal(() => parseArgs('ADD', { ...ADD_ENV, CNI_CONTAINERID: '-x;y' })).details).to.contain('CNI_CONTAINERID');
    expect(refusal(() => parseArgs('ADD', { ...ADD_ENV, CNI_IFNAME: 'a-very-long-ifname0' })).details).to.contain('CNI_IFNAME');
    expect(refusal(() => parseArgs('ADD', { ...ADD_ENV, CNI_IFNAME: 'eth 0' })).details).to.contain('CNI_IFNAME');
    const netns = refusal(() => parseArgs('ADD', { ...ADD_ENV, CNI_NETNS: 'relative/ns' }));
    expect(netns.code).to.equal(CNI_ERR.invalidEnvironment);
    expect(netns.details).to.contain('CNI_NETNS');
  });
});
