import { expect } from 'chai';
import { formatTime, parseTime, timeFormatOf } from './time.js';
import { fromProtoJson, rfc3339, toProtoJson } from './protojson.js';
import { goDuration, grouped } from './status.js';

const NOW = Date.UTC(2026, 10, 29, 21, 0, 0);

describe('hubble CLI times, protojson and numbers (upstream formats)', () => {
  it('parses --since/--until as a duration into the past or one of upstream`s layouts', () => {
    expect(parseTime('90s', NOW)).to.deep.equal({ seconds: String(NOW / 1000 - 90), nanos: 0 });
    expect(parseTime('1h30m', NOW).seconds).to.equal(String(NOW / 1000 - 5400));
    expect(parseTime('2024-01-02', NOW)).to.deep.equal({ seconds: String(Date.UTC(2024, 0, 2) / 1000), nanos: 0 });
    expect(parseTime('2024-01-02T03Z', NOW).seconds).to.equal(String(Date.UTC(2024, 0, 2, 3) / 1000));
    expect(parseTime('2024-01-02T03:04+02:00', NOW).seconds).to.equal(String(Date.UTC(2024, 0, 2, 1, 4) / 1000));
    expect(parseTime('2024-01-02T03:04:05.123456Z', NOW)).to.deep.equal({ seconds: String(Date.UTC(2024, 0, 2, 3, 4, 5) / 1000), nanos: 123456000 });
    expect(parseTime('Tue, 02 Jan 2024 03:04:05 -0100', NOW).seconds).to.equal(String(Date.UTC(2024, 0, 2, 4, 4, 5) / 1000));
    expect(() => parseTime('yesterday', NOW)).to.throw('failed to convert yesterday to time');
  });

  it('prints flow times in UTC in each --time-format layout', () => {
    const ts = { seconds: String(Date.UTC(2026, 0, 5, 7, 3, 9) / 1000), nanos: 123400000 };
    const cases: [string, string][] = [
      ['StampMilli', 'Jan  5 07:03:09.123'],
      ['YearMonthDay', '2026-01-05'],
      ['YearMonthDayHour', '2026-01-05T07Z'],
      ['YearMonthDayHourMinute', '2026-01-05T07:03Z'],
      ['RFC3339', '2026-01-05T07:03:09Z'],
      ['RFC3339Milli', '2026-01-05T07:03:09.123Z'],
      ['RFC3339Micro', '2026-01-05T07:03:09.1234Z'],
      ['RFC3339Nano', '2026-01-05T07:03:09.1234Z'],
      ['RFC1123Z', 'Mon, 05 Jan 2026 07:03:09 +0000'],
      ['nonsense', 'Jan  5 07:03:09.123'],
    ];
    for (const [name, want] of cases) expect(formatTime(ts, timeFormatOf(name)), name).to.equal(want);
    expect(formatTime(null, 'StampMilli')).to.equal('N/A');
  });

  it('protojson: proto names, defaults left out, Timestamps and wrappers as values, and back', () => {
    const res = { flow: null, node_status: { state_change: 'NODE_ERROR', node_names: ['n1'], message: '' }, lost_events: null, node_name: 'relay', time: { seconds: '1767596589', nanos: 120000000 } };
    const json = toProtoJson('observer.GetFlowsResponse', res);
    expect(json).to.deep.equal({ node_status: { state_change: 'NODE_ERROR', node_names: ['n1'] }, node_name: 'relay', time: '2026-01-05T07:03:09.120Z' });
    expect(fromProtoJson('observer.GetFlowsResponse', json)).to.deep.include({ node_name: 'relay', time: res.time, node_status: res.node_status });
    expect(toProtoJson('observer.ServerStatusResponse', { num_flows: '0', num_connected_nodes: { value: 0 }, unavailable_nodes: [], flows_rate: 0.5 })).to.deep.equal({ num_connected_nodes: 0, flows_rate: 0.5 });
    expect(rfc3339({ seconds: '0', nanos: 1 })).to.equal('1970-01-01T00:00:00.000000001Z');
  });

  it('Go`s duration and digit grouping', () => {
    expect(['0', '999', '1500', '2500000', '1000000000', '100000000000', '3723500000000'].map(goDuration)).to.deep.equal(['0s', '999ns', '1.5µs', '2.5ms', '1s', '1m40s', '1h2m3.5s']);
    expect(['0', '999', '1000', '4095', '1234567'].map(grouped)).to.deep.equal(['0', '999', '1,000', '4,095', '1,234,567']);
  });
});
