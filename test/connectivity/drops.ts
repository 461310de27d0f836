// What the datapath says it dropped, two ways, as upstream's connectivity test checks with Hubble
// flows and `cilium metrics list`: every node agent's `GET /v1/monitor` stream read for the whole
// suite (drop events with reason, identities and the packet), and the drop counters of each node's
// pinned cilium_metrics map (the numbers `cilium bpf metrics list` prints).
import type { DropEvent } from '../../datapath/types.js';
import { readMetrics } from '../../datapath/linux/pinned-maps.js';
import { REASON_FORWARDED } from '../../datapath/maps/metrics.js';
import type { MonitorLine } from '../../controllers/agent/api/monitor.js';
import type { ClusterNode } from './cluster.js';

export interface SeenDrop {
  node: string;
  /** When the suite received it (ms, Date.now()). */
  at: number;
  event: DropEvent;
}

export function describeDrop(d: SeenDrop): string {
  const e = d.event;
  const p = e.packet;
  return `${d.node}: drop reason ${e.reason} ${e.direction} endpoint ${e.endpointId} identity ${e.srcIdentity}->${e.dstIdentity} ${p.srcIp}:${p.srcPort} -> ${p.dstIp}:${p.dstPort} proto ${p.protocol}`;
}

/** Reads every node's monitor stream from start() until stop(). */
export class DropCollector {
  readonly drops: SeenDrop[] = [];
  private readonly stopping = new AbortController();
  private readonly failures = new Map<string, string>();
  private readers: Promise<void>[] = [];

  constructor(private readonly nodes: readonly ClusterNode[]) {}

  /** Resolves once every stream answered, so traffic sent afterwards is seen. */
  async start(): Promise<void> {
    const opened: Promise<void>[] = [];
    this.readers = this.nodes.map((node) => {
      let markOpen!: () => void;
      opened.push(new Promise<void>((resolve) => (markOpen = resolve)));
      return this.read(node, markOpen);
    });
    await Promise.race([Promise.all(opened), Promise.all(this.readers)]);
    this.assertHealthy();
  }

  private async read(node: ClusterNode, markOpen: () => void): Promise<void> {
    try {
      // The stream resolves once the agent has subscribed this reader to the ring.
      const events = await node.agent.stream<MonitorLine>('/monitor', this.stopping.signal);
      markOpen();
      for await (const event of events) {
        if (event.type === 'drop') this.drops.push({ node: node.name, at: Date.now(), event });
      }
      if (!this.stopping.signal.aborted) this.failures.set(node.name, 'the agent ended the monitor stream');
    } catch (err) {
      if (!this.stopping.signal.aborted) this.failures.set(node.name, (err as Error).message);
    } finally {
      markOpen();
    }
  }

  /**
   * After a node's agent restarted on purpose: forgets that its stream ended and reads the new
   * agent's. What it dropped in between shows in the drop counters, not here.
   */
  async reopen(nodeName: string): Promise<void> {
    const node = this.nodes.find((n) => n.name === nodeName);
    if (node === undefined) throw new Error(`reopen: no node ${nodeName}`);
    this.failures.delete(nodeName);
    let markOpen!: () => void;
    const opened = new Promise<void>((resolve) => (markOpen = resolve));
    const reader = this.read(node, markOpen);
    this.readers.push(reader);
    await Promise.race([opened, reader]);
    this.assertHealthy();
  }

  /** Throws when a node's stream broke: drops it would have carried are unknown. */
  assertHealthy(): void {
    if (this.failures.size > 0) {
      throw new Error(`monitor stream lost: ${[...this.failures].map(([n, why]) => `${n}: ${why}`).join('; ')}`);
    }
  }

  since(at: number): SeenDrop[] {
    return this.drops.filter((d) => d.at >= at);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.readers);
  }
}

/** Drop counts by reason (summed over directions and drop sites) on each node. */
export type DropCounts = Map<string, Map<number, number>>;

export function readDropCounts(nodes: readonly ClusterNode[]): DropCounts {
  const out: DropCounts = new Map();
  for (const node of nodes) {
    const byReason = new Map<number, number>();
    for (const row of readMetrics(node.info.bpfPinDir)) {
      if (row.key.reason === REASON_FORWARDED) continue;
      byReason.set(row.key.reason, (byReason.get(row.key.reason) ?? 0) + row.counter.count);
    }
    out.set(node.name, byReason);
  }
  return out;
}

/** What each node dropped between two readings, by reason; reasons that did not grow are left out. */
export function dropCountDelta(before: DropCounts, after: DropCounts): Array<{ node: string; reason: number; count: number }> {
  const out: Array<{ node: string; reason: number; count: number }> = [];
  for (const [node, counts] of after) {
    for (const [reason, count] of counts) {
      const grown = count - (before.get(node)?.get(reason) ?? 0);
      if (grown > 0) out.push({ node, reason, count: grown });
    }
  }
  return out;
}
