// The parts of upstream's API models (api/v1/openapi.yaml) the CLI reads, with the swagger JSON
// names. Every field is optional: the CLI prints what the agent answered and upstream's
// placeholders for what it left out, as cilium-dbg does with the same answers.

export interface EndpointModel {
  id?: number;
  status?: {
    state?: string;
    identity?: { id?: number; labels?: string[] };
    labels?: { 'security-relevant'?: string[] };
    networking?: { addressing?: Array<{ ipv4?: string; ipv6?: string }> };
    policy?: { realized?: { 'policy-enabled'?: string } };
  };
}

export interface IdentityModel {
  id?: number;
  labels?: string[];
}

export interface IPListEntryModel {
  cidr?: string;
  identity?: number;
  hostIP?: string;
  encryptKey?: number;
  metadata?: { source?: string; namespace?: string; name?: string };
}

export interface PolicyModel {
  revision?: number;
  policy?: string;
}

export interface LabelModel {
  key?: string;
  value?: string;
  source?: string;
}

export interface SelectorIdentityMappingModel {
  selector?: string;
  identities?: number[];
  users?: number;
  labels?: LabelModel[][];
}

export interface BPFMapEntryModel {
  key?: string;
  value?: string;
  'desired-action'?: string;
  'last-error'?: string;
}

export interface BPFMapModel {
  path?: string;
  /** null/absent: the agent keeps no cache of this map. */
  cache?: Array<BPFMapEntryModel | null> | null;
}

export interface BPFMapListModel {
  maps?: BPFMapModel[];
}

export interface StatusModel {
  state?: string;
  msg?: string;
}

export interface ControllerStatusModel {
  name?: string;
  status?: {
    'consecutive-failure-count'?: number;
    'last-failure-msg'?: string;
    'last-failure-timestamp'?: string;
    'last-success-timestamp'?: string;
  };
}

export interface StatusResponseModel {
  kvstore?: StatusModel;
  kubernetes?: StatusModel & { 'k8s-api-versions'?: string[] };
  'kube-proxy-replacement'?: { mode?: string; deviceList?: Array<{ name?: string; ip?: string[] }>; directRoutingDevice?: string; features?: KubeProxyReplacementFeatures };
  'host-firewall'?: { mode?: string; devices?: string[] };
  'cni-chaining'?: { mode?: string };
  'cni-file'?: StatusModel;
  cilium?: StatusModel;
  stale?: Record<string, string>;
  nodeMonitor?: { cpus?: number; npages?: number; pagesize?: number; lost?: number; unknown?: number };
  cluster?: { ciliumHealth?: StatusModel };
  ipam?: { status?: string; allocations?: Record<string, string> };
  'bandwidth-manager'?: { enabled?: boolean; congestionControl?: string; devices?: string[] };
  routing?: { 'inter-host-routing-mode'?: string; 'intra-host-routing-mode'?: string; 'tunnel-protocol'?: string };
  'attach-mode'?: string;
  'datapath-mode'?: string;
  'configured-datapath-mode'?: string;
  masquerading?: { enabled?: boolean; enabledProtocols?: { ipv4?: boolean; ipv6?: boolean }; mode?: string; 'ip-masq-agent'?: boolean; 'snat-exclusion-cidr-v4'?: string; 'snat-exclusion-cidr-v6'?: string };
  controllers?: ControllerStatusModel[];
  proxy?: { ip?: string; 'port-range'?: string; 'total-redirects'?: number; 'envoy-deployment-mode'?: string; redirects?: Array<{ proxy?: string; name?: string; 'proxy-port'?: number }> };
  'identity-range'?: { 'min-identity'?: number; 'max-identity'?: number };
  hubble?: StatusModel & { observer?: { 'current-flows'?: number; 'max-flows'?: number; 'seen-flows'?: number; uptime?: number } };
  encryption?: { mode?: string; msg?: string };
  'bpf-maps'?: { 'dynamic-size-ratio'?: number; maps?: Array<{ name?: string; size?: number }> };
  'clock-source'?: { mode?: string; hertz?: number };
}

interface Toggle {
  enabled?: boolean;
}

export interface KubeProxyReplacementFeatures {
  nodePort?: Toggle & { algorithm?: string; lutSize?: number; acceleration?: string; mode?: string; dsrMode?: string; portMin?: number; portMax?: number };
  sessionAffinity?: Toggle;
  hostPort?: Toggle;
  externalIPs?: Toggle;
  socketLB?: Toggle;
  socketLBTracing?: Toggle;
  bpfSocketLBHostnsOnly?: boolean;
  nat46X64?: Toggle & { service?: Toggle; gateway?: Toggle & { prefixes?: string[] } };
  annotations?: string[];
}
