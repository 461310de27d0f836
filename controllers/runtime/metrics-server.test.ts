import { expect } from 'chai';
import { Counter, Registry } from 'prom-client';
import { listenAddress, MetricsServer } from './metrics-server.js';

describe('metrics server', () => {
  it('reads Go-style listen addresses', () => {
    expect(listenAddress(':9963')).to.deep.equal({ host: undefined, port: 9963 });
    expect(listenAddress('localhost:9234')).to.deep.equal({ host: 'localhost', port: 9234 });
    expect(listenAddress('[::1]:9234')).to.deep.equal({ host: '::1', port: 9234 });
  });

  it('serves the registry on /metrics only, and stops on abort', async () => {
    const registry = new Registry();
    new Counter({ name: 'cilium_test_total', help: 'test', registers: [registry] }).inc(3);
    const server = new MetricsServer(registry, '127.0.0.1:0');
    const stop = new AbortController();
    const running = server.run(stop.signal);
    while (server.address() === undefined) await new Promise((r) => setTimeout(r, 5));
    const base = `http://127.0.0.1:${server.address()!.port}`;
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(await metrics.text()).to.include('cilium_test_total 3');
    expect((await fetch(`${base}/other`)).status).to.equal(404);
    stop.abort();
    await running;
  });
});
