import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { MetricCount } from '../../datapath/types.js';
import { registerDatapathCounters } from './metrics.js';

describe('registerDatapathCounters', () => {
  it('splits the metrics map into drops by reason and direction and forwards by direction', async () => {
    const registry = new Registry();
    let counts: MetricCount[] = [
      { reason: 0, direction: 'ingress', count: 10, bytes: 1000 },
      { reason: 3, direction: 'ingress', count: 2, bytes: 200 },
      { reason: 133, direction: 'ingress', count: 4, bytes: 240 },
      { reason: 2, direction: 'egress', count: 1, bytes: 60 },
      { reason: 151, direction: 'unknown', count: 7, bytes: 420 },
    ];
    registerDatapathCounters(registry, () => counts, (err) => expect.fail(`unexpected read error: ${String(err)}`));
    const text = await registry.metrics();
    expect(text).to.match(/^# TYPE cilium_drop_count_total counter$/m);
    expect(text).to.match(/^cilium_drop_count_total\{reason="Policy denied",direction="INGRESS"\} 4$/m);
    expect(text).to.match(/^cilium_drop_bytes_total\{reason="Policy denied",direction="INGRESS"\} 240$/m);
    expect(text).to.match(/^cilium_drop_count_total\{reason="Invalid packet",direction="EGRESS"\} 1$/m);
    expect(text).to.match(/^cilium_drop_count_total\{reason="Stale or unroutable IP",direction="UNKNOWN"\} 7$/m);
    // Forward reasons (success, interface) share one series per direction.
    expect(text).to.match(/^cilium_forward_count_total\{direction="INGRESS"\} 12$/m);
    expect(text).to.match(/^cilium_forward_bytes_total\{direction="INGRESS"\} 1200$/m);

    // Each scrape shows the map's totals then, not sums over scrapes.
    counts = [{ reason: 133, direction: 'ingress', count: 5, bytes: 300 }];
    const next = await registry.metrics();
    expect(next).to.match(/^cilium_drop_count_total\{reason="Policy denied",direction="INGRESS"\} 5$/m);
    expect(next).to.not.match(/direction="EGRESS"/);
  });

  it('keeps the last values and reports when the map cannot be read', async () => {
    const registry = new Registry();
    let fail = false;
    const errors: unknown[] = [];
    registerDatapathCounters(
      registry,
      () => {
        if (fail) throw new Error('cilium_metrics: pin lost');
        return [{ reason: 133, direction: 'egress', count: 3, bytes: 180 }];
      },
      (err) => errors.push(err),
    );
    await registry.metrics();
    fail = true;
    const text = await registry.metrics();
    expect(text).to.match(/^cilium_drop_count_total\{reason="Policy denied",direction="EGRESS"\} 3$/m);
    expect(errors).to.have.length(4);
    expect(String(errors[0])).to.contain('pin lost');
  });
});
