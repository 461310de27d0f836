import { expect } from 'chai';
import { Router, type ApiHandler } from './router.js';

describe('API router', () => {
  const h = (name: string): ApiHandler => () => ({ status: 200, body: name });
  const router = new Router()
    .add('GET', '/endpoint', h('list'))
    .add('DELETE', '/endpoint', h('batch-delete'))
    .add('GET', '/endpoint/{id}', h('get'))
    .add('PUT', '/endpoint/{id}', h('put'))
    .add('GET', '/endpoint/{id}/healthz', h('healthz'))
    .add('GET', '/identity/endpoints', h('identity-endpoints'))
    .add('GET', '/identity/{id}', h('identity'));

  const found = (method: string, path: string) => {
    const m = router.match(method, path);
    if (m.kind !== 'found') throw new Error(`${method} ${path}: ${m.kind}`);
    return { name: (m.handler as unknown as () => { body: string })().body, params: m.params };
  };

  it('binds {name} segments, decoded, keeping an encoded / inside its segment', () => {
    expect(found('GET', '/endpoint/42')).to.deep.equal({ name: 'get', params: { id: '42' } });
    expect(found('GET', '/endpoint/pod-name:ns%2Fweb')).to.deep.equal({ name: 'get', params: { id: 'pod-name:ns/web' } });
    expect(found('GET', '/endpoint/cni-attachment-id:abc:eth0/healthz')).to.deep.equal({ name: 'healthz', params: { id: 'cni-attachment-id:abc:eth0' } });
    expect(found('GET', '/endpoint/')).to.deep.equal({ name: 'list', params: {} });
  });

  it('prefers a literal route to a parameterised one', () => {
    expect(found('GET', '/identity/endpoints').name).to.equal('identity-endpoints');
    expect(found('GET', '/identity/7').name).to.equal('identity');
  });

  it('answers no-path for unknown paths and no-method with the allowed methods', () => {
    expect(router.match('GET', '/nope').kind).to.equal('no-path');
    expect(router.match('GET', '/endpoint/1/nope').kind).to.equal('no-path');
    expect(router.match('GET', '/endpoint/%E0%A4%A').kind, 'bad percent-encoding').to.equal('no-path');
    expect(router.match('POST', '/endpoint/1')).to.deep.equal({ kind: 'no-method', allowed: ['GET', 'PUT'] });
    expect(router.match('PUT', '/endpoint')).to.deep.equal({ kind: 'no-method', allowed: ['DELETE', 'GET'] });
  });
});
