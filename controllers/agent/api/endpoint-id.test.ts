import { expect } from 'chai';
import type { EndpointRecord } from '../endpoint/endpoint.js';
import { lookupEndpoint, parseEndpointId } from './endpoint-id.js';
import { ApiError } from './errors.js';

function record(over: Partial<EndpointRecord>): EndpointRecord {
  return {
    id: 1,
    containerId: 'c1',
    containerInterfaceName: 'eth0',
    namespace: 'ns',
    podName: 'web',
    ifname: 'lxc1',
    ifindex: 10,
    mac: '02:00:00:00:00:01',
    hostMac: '02:00:00:00:00:02',
    ipv4: '10.0.0.3',
    externalIpam: false,
    identity: 300,
    identityLabels: ['k8s:app=web'],
    podLabels: { app: 'web' },
    namedPorts: [],
    state: 'ready',
    ...over,
  };
}

describe('endpoint ids in API paths', () => {
  it('parses every upstream prefix', () => {
    expect(parseEndpointId('42')).to.deep.equal({ prefix: 'cilium-local', value: '42', id: 42 });
    expect(parseEndpointId('cilium-local:7')).to.deep.include({ prefix: 'cilium-local', id: 7 });
    expect(parseEndpointId('cni-attachment-id:abc:def:eth0')).to.deep.include({ containerId: 'abc:def', ifname: 'eth0' });
    expect(parseEndpointId('cni-attachment-id:abc')).to.deep.equal({ prefix: 'cni-attachment-id', value: 'abc', containerId: 'abc' });
    expect(parseEndpointId('cep-name:ns/web')).to.deep.include({ namespace: 'ns', pod: 'web' });
    expect(parseEndpointId('pod-name:ns:web')).to.deep.include({ namespace: 'ns', pod: 'web' });
    expect(parseEndpointId('ipv4:10.0.0.3')).to.deep.include({ prefix: 'ipv4', value: '10.0.0.3' });
    expect(parseEndpointId('container-name:x')).to.deep.include({ prefix: 'container-name', value: 'x' });
  });

  it('refuses malformed ids with 400 naming what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['abc', /"abc" is not a numeric endpoint id/],
      ['0', /0 is not an endpoint id/],
      ['70000', /70000 is not an endpoint id/],
      ['nope:1', /unknown prefix "nope"/],
      ['container-id:', /no value after the prefix/],
      ['cni-attachment-id:abc:', /is not <container-id>\[:<ifname>\]/],
      ['pod-name:web', /is not namespace\/pod/],
      ['ipv4:10.0.0', /not an IPv4 address/],
      ['ipv6:zz', /not an IPv6 address/],
    ];
    for (const [id, message] of cases) {
      let err: unknown;
      try {
        parseEndpointId(id);
      } catch (e) {
        err = e;
      }
      expect(err, id).to.be.instanceOf(ApiError);
      expect((err as ApiError).status, id).to.equal(400);
      expect((err as ApiError).message, id).to.match(/^endpoint id/).and.match(message);
    }
  });

  it('finds the endpoint each form names, 404 when none does', () => {
    const eps = [record({}), record({ id: 2, containerId: 'c2', podName: 'db', ipv4: '10.0.0.4', containerName: 'db-ctr' })];
    const idOf = (text: string) => lookupEndpoint(text, eps).id;
    expect(idOf('2')).to.equal(2);
    expect(idOf('cni-attachment-id:c1:eth0')).to.equal(1);
    expect(idOf('container-id:c2')).to.equal(2);
    expect(idOf('container-name:db-ctr')).to.equal(2);
    expect(idOf('pod-name:ns/db')).to.equal(2);
    expect(idOf('cep-name:ns/web')).to.equal(1);
    expect(idOf('ipv4:10.0.0.4')).to.equal(2);
    for (const missing of ['3', 'cni-attachment-id:c1:eth1', 'cni-attachment-id:c1', 'ipv6:fd00::1', 'docker-endpoint:x']) {
      expect(() => lookupEndpoint(missing, eps), missing).to.throw(ApiError, `endpoint ${missing} not found`);
    }
    expect(() => lookupEndpoint('cilium-global:c:n:1', eps)).to.throw(ApiError, /cilium-global ids are not supported/);
  });
});
