import { expect } from 'chai';
import { CNI_ERR, CniError } from './errors.js';
import { DEFAULT_DELETE_QUEUE_DIR, DEFAULT_LOG_FILE, DEFAULT_SOCKET_PATH, parseNetConf, peekCniVersion } from './netconf.js';

function refusal(stdin: string): CniError {
  try {
    parseNetConf(stdin);
  } catch (err) {
    expect(err).to.be.instanceOf(CniError);
    return err as CniError;
  }
  throw new Error(`parseNetConf accepted ${stdin}`);
}

describe('cni/netconf', () => {
  it('reads upstream\'s default conflist entry with the defaults for what it leaves out', () => {
    const conf = parseNetConf(JSON.stringify({ cniVersion: '0.3.1', name: 'cilium', type: 'cilium-cni', 'enable-debug': false, 'log-file': '/tmp/x.log' }));
    expect(conf).to.deep.equal({
      cniVersion: '0.3.1',
      name: 'cilium',
      type: 'cilium-cni',
      mtu: 0,
      enableDebug: false,
      logFile: '/tmp/x.log',
      socketPath: DEFAULT_SOCKET_PATH,
      deleteQueueDir: DEFAULT_DELETE_QUEUE_DIR,
    });
    expect(parseNetConf('{"cniVersion":"1.0.0","name":"cilium"}').logFile).to.equal(DEFAULT_LOG_FILE);
    expect(parseNetConf('{"cniVersion":"1.0.0","name":"cilium","log-file":""}').logFile).to.equal('');
  });

  it('keeps prevResult and our agent socket and delete queue fields', () => {
    const conf = parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', 'socket-path': '/run/a.sock', 'delete-queue-dir': '/run/q', prevResult: { ips: [] }, mtu: 1400 }));
    expect(conf.socketPath).to.equal('/run/a.sock');
    expect(conf.deleteQueueDir).to.equal('/run/q');
    expect(conf.prevResult).to.deep.equal({ ips: [] });
    expect(conf.mtu).to.equal(1400);
  });

  it('refuses undecodable input with code 6', () => {
    for (const bad of ['', 'not json', '[1]', 'null']) expect(refusal(bad).code, bad).to.equal(CNI_ERR.decodingFailure);
    const e = refusal('{"cniVersion": 1, "name": "n"}');
    expect(e.code).to.equal(CNI_ERR.decodingFailure);
    expect(e.details).to.contain('"cniVersion"');
  });

  it('refuses versions it does not speak with code 1, listing the ones it does', () => {
    for (const v of ['0.1.0', '0.2.0', '1.1.0', '2.0.0']) {
      const e = refusal(JSON.stringify({ cniVersion: v, name: 'n' }));
      expect(e.code, v).to.equal(CNI_ERR.incompatibleVersion);
      expect(e.details).to.contain(`config is "${v}"`).and.to.contain('"0.3.0","0.3.1","0.4.0","1.0.0"');
    }
    expect(refusal('{"name":"n"}').details, 'no cniVersion reads as 0.1.0').to.contain('config is "0.1.0"');
  });

  it('names the field of an invalid configuration, code 7', () => {
    const cases: [object, string][] = [
      [{}, '"name"'],
      [{ name: 'a b' }, '"name"'],
      [{ name: 'n', mtu: 20 }, '"mtu"'],
      [{ name: 'n', mtu: '1500' }, '"mtu"'],
      [{ name: 'n', 'enable-debug': 'yes' }, '"enable-debug"'],
      [{ name: 'n', 'log-file': 'relative.log' }, '"log-file"'],
      [{ name: 'n', 'socket-path': 7 }, '"socket-path"'],
      [{ name: 'n', 'delete-queue-dir': '' }, '"delete-queue-dir"'],
      [{ name: 'n', 'chaining-mode': 'aws-cni' }, '"chaining-mode"'],
    ];
    for (const [fields, field] of cases) {
      const e = refusal(JSON.stringify({ cniVersion: '1.0.0', ...fields }));
      expect(e.code, JSON.stringify(fields)).to.equal(CNI_ERR.invalidNetworkConfig);
      expect(e.details, JSON.stringify(fields)).to.contain(`field ${field}`);
    }
  });

  it('peeks the cniVersion of any decodable input for the error object', () => {
    expect(peekCniVersion('{"cniVersion":"0.4.0"}')).to.equal('0.4.0');
    expect(peekCniVersion('{"cniVersion":9}')).to.equal(undefined);
    expect(peekCniVersion('garbage')).to.equal(undefined);
  });
});
