import { expect } from 'chai';
import type { PolicyEntry } from '../types.js';
import { ipcacheLookup, type ModelPacket, policyAllows, WORLD_ID } from './lookup-model.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from './protocols.js';

describe('datapath lookup model', () => {
  it('gives an address its longest covering prefix\'s identity, else world', () => {
    const rows = [
      { prefix: '10.0.0.0/8', identity: 300 },
      { prefix: '10.1.0.0/16', identity: 301 },
      { prefix: '10.1.2.3/32', identity: 302 },
    ];
    expect(ipcacheLookup(rows, '10.1.2.3')).to.equal(302);
    expect(ipcacheLookup(rows, '10.1.2.4')).to.equal(301);
    expect(ipcacheLookup(rows, '10.2.0.1')).to.equal(300);
    expect(ipcacheLookup(rows, '192.0.2.1')).to.equal(WORLD_ID);
    expect(ipcacheLookup([...rows, { prefix: '0.0.0.0/0', identity: 303 }], '192.0.2.1')).to.equal(303);
  });

  describe('policy', () => {
    const ingress = (peerIdentity: number, protocol: number, port: number): ModelPacket => ({ peerIdentity, direction: 'ingress', protocol, port });
    const allow = (identity: number, protocol: number, port: number, endPort?: number): PolicyEntry => ({ identity, direction: 'ingress', protocol, port, endPort, deny: false });
    const enforcing = { ingress: true, egress: false };

    it('drops what no entry allows in an enforced direction and passes all in the other', () => {
      expect(policyAllows([], enforcing, ingress(5, IPPROTO_TCP, 80))).to.equal(false);
      expect(policyAllows([], enforcing, { peerIdentity: 5, direction: 'egress', protocol: IPPROTO_TCP, port: 80 })).to.equal(true);
    });

    it('matches identity, protocol and port range, with identity 0 for any peer', () => {
      const entries = [allow(5, IPPROTO_TCP, 80, 82), allow(6, 0, 0), allow(0, IPPROTO_UDP, 53), allow(5, IPPROTO_ICMP, 8)];
      expect(policyAllows(entries, enforcing, ingress(5, IPPROTO_TCP, 81))).to.equal(true);
      expect(policyAllows(entries, enforcing, ingress(5, IPPROTO_TCP, 83))).to.equal(false);
      expect(policyAllows(entries, enforcing, ingress(5, IPPROTO_UDP, 81))).to.equal(false);
      expect(policyAllows(entries, enforcing, ingress(7, IPPROTO_TCP, 80))).to.equal(false);
      expect(policyAllows(entries, enforcing, ingress(6, IPPROTO_UDP, 9999))).to.equal(true);
      expect(policyAllows(entries, enforcing, ingress(7, IPPROTO_UDP, 53))).to.equal(true);
      expect(policyAllows(entries, enforcing, ingress(5, IPPROTO_ICMP, 8))).to.equal(true);
      expect(policyAllows(entries, enforcing, ingress(5, IPPROTO_ICMP, 0))).to.equal(false);
    });

    it('drops on a deny from either lookup, even under a longer allow', () => {
      const denyAnyPeer: PolicyEntry = { identity: 0, direction: 'ingress', protocol: IPPROTO_TCP, port: 0, deny: true };
      expect(policyAllows([allow(5, IPPROTO_TCP, 80), denyAnyPeer], enforcing, ingress(5, IPPROTO_TCP, 80))).to.equal(false);
      const denyPeer: PolicyEntry = { identity: 5, direction: 'ingress', protocol: 0, port: 0, deny: true };
      expect(policyAllows([allow(0, IPPROTO_TCP, 80), denyPeer], enforcing, ingress(5, IPPROTO_TCP, 80))).to.equal(false);
      expect(policyAllows([allow(0, IPPROTO_TCP, 80), denyPeer], enforcing, ingress(6, IPPROTO_TCP, 80))).to.equal(true);
    });

    it('drops an allow that requires authentication when it decides, not when a longer match does', () => {
      const authAny: PolicyEntry = { ...allow(0, IPPROTO_TCP, 0), authType: 1 };
      expect(policyAllows([authAny], enforcing, ingress(5, IPPROTO_TCP, 80))).to.equal(false);
      expect(policyAllows([authAny, allow(5, IPPROTO_TCP, 80)], enforcing, ingress(5, IPPROTO_TCP, 80)), 'the peer\'s longer allow decides').to.equal(true);
      expect(policyAllows([{ ...allow(5, IPPROTO_TCP, 0), authType: 1 }, allow(0, IPPROTO_TCP, 0)], enforcing, ingress(5, IPPROTO_TCP, 80)), 'the peer\'s entry wins a tie').to.equal(false);
    });
  });
});
