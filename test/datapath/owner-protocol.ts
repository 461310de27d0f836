// What the restart test hands the datapath-owner process and what it reports back.
import type { EndpointSpec, IPCacheEntry, PolicyEntry, SyncResult } from '../../datapath/types.js';

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

/** Starts the report line, so nothing else a library prints on stdout is taken for it. */
export const REPORT_MARK = 'datapath-owner report: ';
