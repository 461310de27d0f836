// Golden tests of the CLI's text: each formatter renders a fixture from ../testdata and must give
// the expected file byte for byte, so a layout change fails here (CILIUM_TS_UPDATE_GOLDEN=1
// rewrites them after a deliberate change). That the API-backed layouts are upstream's is checked
// by test/integration/cli/upstream.test.ts, which runs cilium-dbg on the same fixtures.
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CtRow, IpcacheRow, LxcRow, MetricsRow, PolicyRow } from '../../../datapath/linux/pinned-maps.js';
import type { BPFMapListModel, EndpointModel, IdentityModel, IPListEntryModel, SelectorIdentityMappingModel, StatusResponseModel } from '../models.js';
import { jsonOutput } from '../text/go-format.js';
import { printableLabels } from '../text/labels.js';
import { dumpJson, endpointDump, formatAllPolicyTables, formatConntrack, formatKeyValueTable, formatMetrics, formatPolicyTable, ipcacheDump } from './bpf.js';
import { formatEndpointList } from './endpoints.js';
import { formatIdentities, sortIdentities } from './identities.js';
import { formatIPList, sortIPList } from './ip-list.js';
import { formatMapEntries, formatMapList } from './maps-api.js';
import { formatMonitorJson, formatMonitorLine, type MonitorEvent } from './monitor.js';
import { formatPolicyGet, formatSelectors } from './policy.js';
import { formatStatus } from './status.js';

const TESTDATA = path.join(import.meta.dirname, '..', 'testdata');
const UPDATE = process.env.CILIUM_TS_UPDATE_GOLDEN === '1';

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(path.join(TESTDATA, name), 'utf8')) as T;
}

const endpoints = fixture<EndpointModel[]>('endpoint-list.json');
const identities = fixture<IdentityModel[]>('identity-list.json');
const status = fixture<StatusResponseModel>('status.json');
const ipList = fixture<IPListEntryModel[]>('ip-list.json');
const selectors = fixture<SelectorIdentityMappingModel[]>('selectors.json');
const mapList = fixture<BPFMapListModel>('map-list.json');
const bpf = fixture<{ endpoints: LxcRow[]; ipcache: IpcacheRow[]; policy: PolicyRow[]; ct: Array<{ name: string; rows: CtRow[] }>; metrics: MetricsRow[] }>('bpf-maps.json');
const events = fixture<MonitorEvent[]>('monitor-events.json');

// The identities the agent would describe; 16777217 is left out to show the fallback.
const labelsOf = (id: number): string[] | undefined => {
  const found = identities.find((i) => i.id === id && id !== 16777217);
  return found === undefined ? undefined : printableLabels(found.labels);
};
const now = new Date('2026-11-29T18:01:00Z');

const CASES: Record<string, () => string> = {
  'endpoint-list.txt': () => formatEndpointList(endpoints),
  'endpoint-list-no-headers.txt': () => formatEndpointList(endpoints, { noHeaders: true }),
  'endpoint-list.out.json': () => jsonOutput([...endpoints].sort((a, b) => (a.id ?? 0) - (b.id ?? 0))),
  'identity-list.txt': () => formatIdentities(sortIdentities(identities)),
  'status.txt': () => formatStatus(status, { now }),
  'status-verbose.txt': () => formatStatus(status, { now, verbose: true }),
  'ip-list.txt': () => formatIPList(sortIPList(ipList), { labelsOf }),
  'ip-list-numeric-verbose.txt': () => formatIPList(sortIPList(ipList), { numeric: true, verbose: true }),
  'policy-get.txt': () => formatPolicyGet({ revision: 7, policy: '[\n  {\n    "endpointSelector": {}\n  }\n]' }),
  'selectors.txt': () => formatSelectors(selectors),
  'selectors-verbose.txt': () => formatSelectors(selectors, { verbose: true }),
  'map-list.txt': () => formatMapList(mapList),
  'map-get.txt': () => formatMapEntries(mapList.maps![0]!) + formatMapEntries(mapList.maps![1]!) + formatMapEntries(mapList.maps![2]!),
  'bpf-endpoint-list.txt': () => formatKeyValueTable('IP ADDRESS', 'LOCAL ENDPOINT INFO', endpointDump(bpf.endpoints)),
  'bpf-endpoint-list.out.json': () => jsonOutput(dumpJson(endpointDump(bpf.endpoints))),
  'bpf-ipcache-list.txt': () => formatKeyValueTable('IP PREFIX/ADDRESS', 'IDENTITY', ipcacheDump(bpf.ipcache)),
  'bpf-policy-get.txt': () => formatPolicyTable(bpf.policy, { labelsOf }),
  'bpf-policy-get-numeric.txt': () => formatPolicyTable(bpf.policy, { numeric: true }),
  'bpf-policy-get-all.txt': () => formatAllPolicyTables([{ endpointId: 3459, path: '/sys/fs/bpf/tc/globals/cilium_policy_03459', entries: bpf.policy }, { endpointId: 12, path: '/sys/fs/bpf/tc/globals/cilium_policy_00012', entries: [] }], { numeric: true }),
  'bpf-ct-list.txt': () => formatConntrack(bpf.ct),
  'bpf-metrics-list.txt': () => formatMetrics(bpf.metrics),
  'monitor.txt': () => events.map((e) => formatMonitorLine(e)).join(''),
  'monitor-numeric.txt': () => events.map((e) => formatMonitorLine(e, { numeric: true })).join(''),
  'monitor-json.txt': () => events.map((e) => formatMonitorJson(e)).join(''),
};

describe('cli golden output', () => {
  for (const [file, render] of Object.entries(CASES)) {
    it(`renders ${file}`, () => {
      const got = render();
      const want = path.join(TESTDATA, file);
      if (UPDATE) writeFileSync(want, got);
      expect(got).to.equal(readFileSync(want, 'utf8'));
    });
  }
});
