// One connectivity action, after upstream's check.Action: a probe from a pod to a destination,
// an expected verdict, and its judgment from both ends: the probe's exit code, and the drop event
// the datapath must (or must not) have sent for that flow, on the node and in the direction the
// policy decides, with the endpoint and the identities it decided on.
import { reasonName } from '../../controllers/cli/text/datapath-names.js';
import { pollUntil } from '../envtest/poll.js';
import type { ConnectivityCluster } from './cluster.js';
import { describeDrop, type DropCollector, type SeenDrop } from './drops.js';
import { describeProbe, probeProtocol, runProbe, type Probe } from './traffic.js';
import type { Peer } from './workloads.js';

/** Upstream drop reasons (bpf/lib/drop_reasons.h). */
export const POLICY_DENIED = 133;
export const POLICY_DENY = 181;

export type DropVerdict = { ok: false; direction: 'ingress' | 'egress'; reason: number };
export type Verdict = { ok: true } | DropVerdict;
export const OK: Verdict = { ok: true };
export const egressDrop = (reason = POLICY_DENIED): DropVerdict => ({ ok: false, direction: 'egress', reason });
export const ingressDrop = (reason = POLICY_DENIED): DropVerdict => ({ ok: false, direction: 'ingress', reason });

/** Local-scope identities (CIDR identities) start here (upstream identity.LocalIdentityFlag). */
const LOCAL_IDENTITY_FLAG = 1 << 24;

export interface Destination {
  name: string;
  ip: string;
  /** The node it lives on; absent for addresses outside the cluster. */
  node?: string;
  /** The security identity the source's node knows it by; 'cidr' for any CIDR identity. */
  identity: number | 'cidr';
  /** A pod of the suite (policy drops on ingress are reported by its endpoint). */
  peer?: Peer;
}

export interface Action {
  from: Peer;
  to: Destination;
  probe: Probe;
}

export type Locality = 'same-node' | 'cross-node' | 'outside';

export function localityOf(a: Action): Locality {
  if (a.to.node === undefined) return 'outside';
  return a.to.node === a.from.node ? 'same-node' : 'cross-node';
}

function describeAction(a: Action): string {
  return `${a.from.namespace}/${a.from.name} (${a.from.node}) -> ${a.to.name} ${describeProbe(a.probe)}`;
}

function describeVerdict(v: Verdict): string {
  return v.ok ? 'OK' : `${v.direction} drop ${v.reason} (${reasonName(v.reason)})`;
}

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
/** The ICMP type of a packet summary (its flags hold type << 8 | code). */
const icmpType = (d: SeenDrop): number => d.event.packet.flags >> 8;

/** The drop events of the action's flow (its probe's direction only: replies are other flows). */
export function isOfFlow(a: Action, d: SeenDrop): boolean {
  const p = d.event.packet;
  if (p.srcIp !== a.from.ip || p.dstIp !== a.probe.ip || p.protocol !== probeProtocol(a.probe)) return false;
  return a.probe.kind === 'http' ? p.dstPort === a.probe.port : icmpType(d) === ICMP_ECHO_REQUEST;
}

/** Drop events of the action's connection, either way (a dropped reply fails an action too). */
export function isOfConnection(a: Action, d: SeenDrop): boolean {
  if (isOfFlow(a, d)) return true;
  const p = d.event.packet;
  if (p.srcIp !== a.probe.ip || p.dstIp !== a.from.ip || p.protocol !== probeProtocol(a.probe)) return false;
  return a.probe.kind === 'http' ? p.srcPort === a.probe.port : icmpType(d) === ICMP_ECHO_REPLY;
}

function identityMatches(want: number | 'cidr', got: number): boolean {
  return want === 'cidr' ? got >= LOCAL_IDENTITY_FLAG : got === want;
}

/** The event the datapath must send for a dropped action: where, how, and about whom. */
export function isExpectedDrop(a: Action, v: DropVerdict, d: SeenDrop): boolean {
  const e = d.event;
  const at = v.direction === 'egress' ? { node: a.from.node, endpoint: a.from.endpointId } : { node: a.to.node, endpoint: a.to.peer?.endpointId };
  return (
    isOfFlow(a, d) &&
    e.reason === v.reason &&
    e.direction === v.direction &&
    d.node === at.node &&
    e.endpointId === at.endpoint &&
    e.srcIdentity === a.from.identity &&
    identityMatches(a.to.identity, e.dstIdentity)
  );
}

const DROP_EVENT_WAIT_MS = 3_000;

export interface Judged {
  action: Action;
  expected: Verdict;
  /** Why it failed; absent when it passed. */
  failure?: string;
}

export async function judge(cluster: ConnectivityCluster, drops: DropCollector, action: Action, expected: Verdict): Promise<Judged> {
  const start = Date.now();
  const r = await runProbe(cluster, action.from, action.probe);
  const flowDrops = () => drops.since(start).filter((d) => isOfConnection(action, d));
  const head = `${describeAction(action)}: expected ${describeVerdict(expected)}`;
  if (expected.ok) {
    const dropped = flowDrops();
    if (r.code !== 0 || dropped.length > 0) {
      const seen = dropped.length > 0 ? `; drop events: ${dropped.map(describeDrop).join(' | ')}` : '; no drop event';
      return { action, expected, failure: `${head}, got exit ${r.code} ${r.stderr.trim()}${seen}` };
    }
    return { action, expected };
  }
  if (r.code === 0) return { action, expected, failure: `${head}, but it got through (exit 0)${eventsNote(flowDrops())}` };
  const matched = await pollUntil('the drop event', () => flowDrops().some((d) => isExpectedDrop(action, expected, d)), DROP_EVENT_WAIT_MS).then(
    () => true,
    () => false,
  );
  const seen = flowDrops();
  if (!matched) {
    return { action, expected, failure: `${head}: exit ${r.code} but no such drop event${eventsNote(seen)}` };
  }
  return { action, expected };
}

function eventsNote(seen: SeenDrop[]): string {
  return seen.length === 0 ? '; no drop event for the flow' : `; drop events for the flow: ${seen.map(describeDrop).join(' | ')}`;
}

/** Runs `items` through `fn`, at most `limit` at a time, results in input order. */
export async function inParallel<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
