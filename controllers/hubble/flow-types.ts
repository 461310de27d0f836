// The Hubble messages as plain objects in the protos.ts convention (proto field names, 64-bit
// integers as decimal strings, enums by name). Only what cilium-ts produces or reads is typed;
// a field left out is the proto default on the wire.

export interface Timestamp {
  seconds: string;
  nanos: number;
}

export type Verdict = 'VERDICT_UNKNOWN' | 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED';
export type TrafficDirection = 'TRAFFIC_DIRECTION_UNKNOWN' | 'INGRESS' | 'EGRESS';
export type TraceReason = 'TRACE_REASON_UNKNOWN' | 'NEW' | 'ESTABLISHED' | 'REPLY' | 'RELATED';
export type LostEventSource = 'UNKNOWN_LOST_EVENT_SOURCE' | 'PERF_EVENT_RING_BUFFER' | 'OBSERVER_EVENTS_QUEUE' | 'HUBBLE_RING_BUFFER';

export interface Workload {
  name: string;
  kind: string;
}

export interface Endpoint {
  ID: number;
  identity: number;
  cluster_name: string;
  namespace: string;
  /** `source:key=value`, sorted. */
  labels: string[];
  pod_name: string;
  workloads: Workload[];
}

export interface TCPFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

export interface Layer4 {
  protocol?: 'TCP' | 'UDP' | 'ICMPv4' | 'SCTP';
  TCP?: { source_port: number; destination_port: number; flags: TCPFlags };
  UDP?: { source_port: number; destination_port: number };
  SCTP?: { source_port: number; destination_port: number };
  ICMPv4?: { type: number; code: number };
}

/** The policy (upstream flow.Policy) whose rule decided a flow. */
export interface Policy {
  kind: string;
  namespace: string;
  name: string;
  labels: string[];
  revision: string;
}

export interface Flow {
  time: Timestamp;
  uuid: string;
  verdict: Verdict;
  drop_reason?: number;
  /** A flow.DropReason name; a code the enum does not name stays a number. */
  drop_reason_desc?: string | number;
  IP: { source: string; destination: string; ipVersion: 'IP_NOT_USED' | 'IPv4' | 'IPv6' };
  l4?: Layer4;
  source: Endpoint;
  destination: Endpoint;
  Type: 'L3_L4';
  node_name: string;
  event_type: { type: number; sub_type: number };
  traffic_direction: TrafficDirection;
  policy_match_type?: number;
  trace_observation_point?: string;
  trace_reason?: TraceReason;
  is_reply?: { value: boolean };
  reply?: boolean;
  interface?: { index: number; name: string };
  Summary: string;
  egress_allowed_by?: Policy[];
  ingress_allowed_by?: Policy[];
  egress_denied_by?: Policy[];
  ingress_denied_by?: Policy[];
}

export interface LostEvent {
  source: LostEventSource;
  num_events_lost: string;
  first?: Timestamp;
  last?: Timestamp;
}

/** What the ring holds: a flow, or how many events were lost before the next one. */
export type HubbleEvent = { time: Timestamp; flow: Flow; lost?: undefined } | { time: Timestamp; lost: LostEvent; flow?: undefined };

export interface EventTypeFilter {
  type: number;
  match_sub_type: boolean;
  sub_type: number;
}

export interface NetworkInterface {
  index: number;
  name: string;
}

/** flow.FlowFilter as a request decodes (every repeated field present, maybe empty). */
export interface FlowFilter {
  uuid: string[];
  source_ip: string[];
  source_ip_xlated: string[];
  source_pod: string[];
  source_fqdn: string[];
  source_label: string[];
  source_service: string[];
  source_workload: Workload[];
  source_cluster_name: string[];
  destination_ip: string[];
  destination_pod: string[];
  destination_fqdn: string[];
  destination_label: string[];
  destination_service: string[];
  destination_workload: Workload[];
  destination_cluster_name: string[];
  traffic_direction: TrafficDirection[];
  verdict: Verdict[];
  drop_reason_desc: string[];
  interface: NetworkInterface[];
  event_type: EventTypeFilter[];
  http_status_code: string[];
  protocol: string[];
  source_port: string[];
  destination_port: string[];
  reply: boolean[];
  dns_query: string[];
  source_identity: number[];
  destination_identity: number[];
  http_method: string[];
  http_path: string[];
  http_url: string[];
  http_header: { key: string; value: string }[];
  tcp_flags: TCPFlags[];
  node_name: string[];
  node_labels: string[];
  ip_version: string[];
  trace_id: string[];
  ip_trace_id: string[];
  encrypted: boolean[];
  experimental: { cel_expression: string[] } | null;
}

export function timestampOf(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6)) };
}

/** Milliseconds since the epoch of a Timestamp (sub-millisecond precision kept as a fraction). */
export function timestampMs(t: Timestamp): number {
  return Number(t.seconds) * 1000 + t.nanos / 1e6;
}
