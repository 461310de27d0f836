// What the restart test hands the datapath-owner process and what it reports back. The owner
// prints one marked line per report; stdin carries its commands (one per line, closing = exit).
import type { CtEntry, CtTuple } from '../../datapath/maps/ct.js';
import type { MetricCount } from '../../datapath/types.js';
import type { DatapathEvent, EndpointSpec, IPCacheEntry, PolicyEntry, SyncResult } from '../../datapath/types.js';

export interface DesiredState {
  endpoints: EndpointSpec[];
  ipcache: IPCacheEntry[];
  policies: Array<{ endpointId: number; entries: PolicyEntry[] }>;
}

export interface OwnerReport {
  ipcache: SyncResult;
  policies: Record<number, SyncResult>;
  pruned: number[];
}

/** What the kernel side holds at one moment, read through the owner's datapath. */
export interface Observation {
  metrics: MetricCount[];
  /** Events drained from the ring: everything since the previous observation (by any owner). */
  events: DatapathEvent[];
  conntrack: Array<{ tuple: CtTuple; entry: CtEntry }>;
}

/** Starts the report line, so nothing else a library prints on stdout is taken for it. */
export const REPORT_MARK = 'datapath-owner report: ';
export const OBSERVATION_MARK = 'datapath-owner observation: ';
/** The one command besides closing stdin: drain events and read metrics and conntrack. */
export const OBSERVE_COMMAND = 'observe';
