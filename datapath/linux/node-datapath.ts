// The node half of the datapath: devices, sysctls, masquerade and routes (node-network.ts), the
// node config map the programs read, and the programs on cilium_host (bpf_host.o) and cilium_vxlan
// (bpf_overlay.o), loaded on the maps pinned by the endpoint object.
import { u32 } from '../libbpf/bytes.js';
import type { BpfMap } from '../libbpf/map.js';
import { BpfObject } from '../libbpf/object.js';
import type { BpfProgram } from '../libbpf/prog.js';
import type { TcAttachPoint } from '../libbpf/tc.js';
import type { DatapathLogger } from '../log.js';
import { assertLayouts } from '../maps/layout.js';
import { encodeNodeConfig, NODE_CONFIG_LAYOUT, type NodeConfig } from '../maps/node-config.js';
import type { NodeNetworkSpec, NodeNetworkStatus, RemoteNodeRoute, SyncResult } from '../types.js';
import { DatapathError } from './errors.js';
import type { MapWriteCounter } from './map-writes.js';
import {
  checkNodeNetworkSpec,
  desiredNodeRoutes,
  enableForwarding,
  ensureHostDevices,
  ensureOverlayDevice,
  HOST_DEVICE,
  OVERLAY_DEVICE,
  removeOverlayDevice,
  syncMasquerade,
  syncRoutes,
  TUNNEL_OVERHEAD,
  underlayDevice,
  type RouteMode,
} from './node-network.js';
import { HOST_OBJECT_PATH, OVERLAY_OBJECT_PATH } from './paths.js';
import { putProgram } from './tc-program.js';

type NodeProgram = 'cil_from_host' | 'cil_from_overlay' | 'cil_to_overlay';

const CONFIG_KEY = u32(0);

// Which program goes where: cilium_host's egress is what the node routes towards other nodes'
// pods (upstream's from-host), cilium_vxlan's hooks what the tunnel carries in and out.
const OVERLAY_HOOKS: ReadonlyArray<[TcAttachPoint, NodeProgram]> = [
  ['tc-ingress', 'cil_from_overlay'],
  ['tc-egress', 'cil_to_overlay'],
];

export class NodeDatapath {
  private programs: Record<NodeProgram, BpfProgram> | undefined;
  private routeMode: RouteMode | undefined;
  // setupNode and syncNodeRoutes run one at a time: each is several kernel changes in a row.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly bpffsDir: string,
    private readonly configMap: BpfMap,
    private readonly writes: MapWriteCounter,
    private readonly log: DatapathLogger,
  ) {}

  setup(spec: NodeNetworkSpec): Promise<NodeNetworkStatus> {
    return this.serialized(() => this.setupNow(spec));
  }

  syncRoutes(routes: readonly RemoteNodeRoute[]): Promise<SyncResult> {
    return this.serialized(async () => {
      if (this.routeMode === undefined) throw new DatapathError('node routes', 'cannot be synced before setupNode');
      return syncRoutes(desiredNodeRoutes(routes, this.routeMode));
    });
  }

  close(): void {
    for (const p of Object.values(this.programs ?? {})) p.close();
    this.programs = undefined;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async setupNow(spec: NodeNetworkSpec): Promise<NodeNetworkStatus> {
    checkNodeNetworkSpec(spec);
    const underlay = await underlayDevice(spec.nodeIP);
    const tunnel = spec.routingMode === 'tunnel';
    const deviceMtu = spec.mtu !== undefined && spec.mtu > 0 ? spec.mtu : underlay.mtu;
    const podMtu = tunnel ? deviceMtu - TUNNEL_OVERHEAD : deviceMtu;
    const programs = this.loadPrograms();
    await enableForwarding();
    const host = await ensureHostDevices(spec.routerIP, deviceMtu);
    const overlay = tunnel ? await ensureOverlayDevice(spec.tunnelPort) : undefined;
    // The programs find cilium_vxlan through the config: written before they go on, and in
    // native mode before cilium_vxlan goes, so nothing is redirected to a device that is gone.
    this.writeConfig({ routingMode: spec.routingMode, overlayIfindex: overlay?.ifindex ?? 0, hostIfindex: host.ifindex, nodeIP: spec.nodeIP });
    putProgram(host.ifindex, 'tc-egress', programs.cil_from_host);
    if (overlay !== undefined) {
      for (const [hook, name] of OVERLAY_HOOKS) putProgram(overlay.ifindex, hook, programs[name]);
    } else {
      await removeOverlayDevice();
    }
    await syncMasquerade(spec);
    this.routeMode = { routingMode: spec.routingMode, routerIP: spec.routerIP, podCIDR: spec.podCIDR, podMtu };
    this.log.info('node network set up', { routingMode: spec.routingMode, nodeIP: spec.nodeIP, routerIP: spec.routerIP, podCIDR: spec.podCIDR, podMtu, underlay: underlay.ifname, host: HOST_DEVICE, overlay: overlay === undefined ? undefined : OVERLAY_DEVICE });
    return overlay === undefined ? { podMtu, hostIfindex: host.ifindex } : { podMtu, hostIfindex: host.ifindex, overlayIfindex: overlay.ifindex };
  }

  private writeConfig(config: NodeConfig): void {
    const value = encodeNodeConfig(config);
    if (this.configMap.lookup(CONFIG_KEY)?.equals(value)) return;
    this.configMap.update(CONFIG_KEY, value);
    this.writes.update('cilium_node_config');
  }

  /** Loads both node objects once per process, on the maps the endpoint object pinned. */
  private loadPrograms(): Record<NodeProgram, BpfProgram> {
    if (this.programs !== undefined) return this.programs;
    const loaded: Partial<Record<NodeProgram, BpfProgram>> = {};
    try {
      for (const [path, names] of [
        [HOST_OBJECT_PATH, ['cil_from_host']],
        [OVERLAY_OBJECT_PATH, ['cil_from_overlay', 'cil_to_overlay']],
      ] as const) {
        const obj = BpfObject.open(path, { pinRoot: this.bpffsDir });
        try {
          assertLayouts(obj.btf(), [NODE_CONFIG_LAYOUT], path);
          obj.load();
          for (const name of names) loaded[name] = obj.program(name);
        } finally {
          obj.close();
        }
      }
    } catch (err) {
      for (const p of Object.values(loaded)) p.close();
      throw err;
    }
    this.programs = loaded as Record<NodeProgram, BpfProgram>;
    return this.programs;
  }
}
