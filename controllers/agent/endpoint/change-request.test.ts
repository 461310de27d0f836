import { expect } from 'chai';
import { endpointCreateFields, InvalidEndpointRequestError, parseEndpointChangeRequest } from './change-request.js';
import { cniRequest } from './testing.js';

function refusal(input: unknown): InvalidEndpointRequestError {
  try {
    endpointCreateFields(parseEndpointChangeRequest(input));
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidEndpointRequestError);
    return err as InvalidEndpointRequestError;
  }
  throw new Error('request was accepted');
}

describe('EndpointChangeRequest', () => {
  it("accepts cilium-cni's request and extracts what creating the endpoint needs", () => {
    const f = endpointCreateFields(parseEndpointChangeRequest(cniRequest()));
    expect(f).to.deep.equal({
      id: 0,
      containerId: 'c0ffee',
      containerInterfaceName: 'eth0',
      namespace: 'default',
      podName: 'web-0',
      podUid: 'uid-default-web-0',
      ifname: 'lxc0123456789ab',
      ifindex: 42,
      mac: '02:00:00:00:00:02',
      hostMac: '02:00:00:00:00:01',
      ipv4: '10.0.1.20',
      externalIpam: false,
    });
  });

  it('treats null as absent, ignores unknown fields, leaves the address to the agent when none is given', () => {
    const f = endpointCreateFields(parseEndpointChangeRequest(cniRequest({ addressing: null, 'k8s-uid': null, 'some-future-field': 1 })));
    expect(f.ipv4).to.equal(undefined);
    expect(f.podUid).to.equal(undefined);
  });

  const bad: [string, Record<string, unknown>, string, RegExp][] = [
    ['a bad IPv4 address', { addressing: { ipv4: '10.0.0.300' } }, 'addressing.ipv4', /"10\.0\.0\.300": not a dotted-quad IPv4 address/],
    ['a bad MAC', { mac: '02:00:00:00:00' }, 'mac', /six lower-case hex octets/],
    ['a bad host MAC', { 'host-mac': 'zz:00:00:00:00:01' }, 'host-mac', /hex octets/],
    ['an interface name over IFNAMSIZ', { 'interface-name': 'lxc0123456789abcdef' }, 'interface-name', /1\.\.15 characters/],
    ['a string ifindex', { 'interface-index': '42' }, 'interface-index', /"42" is not an integer/],
    ['a negative ifindex', { 'interface-index': -1 }, 'interface-index', /-1 is not an integer in 0\.\.4294967295/],
    ['ifindex 0', { 'interface-index': 0 }, 'interface-index', /not 0/],
    ['an unknown state', { state: 'running' }, 'state', /"running" is not one of creating, waiting-for-identity/],
    ['no state', { state: undefined }, 'state', /is required/],
    ['a non-numeric netns cookie', { 'netns-cookie': '12ab' }, 'netns-cookie', /decimal 64-bit/],
    ['a netns cookie over 2^64', { 'netns-cookie': '18446744073709551616' }, 'netns-cookie', /decimal 64-bit/],
    ['a non-string label', { labels: ['k8s:a=b', 3] }, 'labels[1]', /3 is not a string/],
    ['external-ipam not a boolean', { 'datapath-configuration': { 'external-ipam': 'yes' } }, 'datapath-configuration.external-ipam', /not a boolean/],
    ['no pod name', { 'k8s-pod-name': '' }, 'k8s-pod-name', /is required to create a pod endpoint/],
    ['no namespace', { 'k8s-namespace': undefined }, 'k8s-namespace', /is required/],
    ['a pod name that is no object name', { 'k8s-pod-name': 'Web_0' }, 'k8s-pod-name', /not a Kubernetes object name/],
    ['no container id', { 'container-id': undefined }, 'container-id', /is required/],
    ['no host veth', { 'interface-name': undefined }, 'interface-name', /is required/],
    ['an id over 4095', { id: 4096 }, 'id', /4096 is not an endpoint id/],
    ['an IPv6 address', { addressing: { ipv4: '10.0.1.20', ipv6: 'fd00::1' } }, 'addressing.ipv6', /IPv6 is not supported/],
  ];
  for (const [what, overrides, field, reason] of bad) {
    it(`refuses ${what}, naming ${field}`, () => {
      const err = refusal(cniRequest(overrides));
      expect(err.field).to.equal(field);
      expect(err.message).to.match(reason);
      expect(err.message.startsWith(`endpoint change request: ${field}: `)).to.equal(true);
    });
  }

  it('refuses a body that is not an object', () => {
    for (const body of [null, [], 'x', 3]) expect(refusal(body).message).to.match(/must be an object/);
  });
});
