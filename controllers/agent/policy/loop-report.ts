// Writes what the policy loop realized into this node's CiliumNode annotation
// (controllers/policystatus/realized.ts), from which the operator sums each policy's `Enforced`
// condition. One key, so any number of policy changes fold into one write; the CiliumNode watch
// brings the annotation back when someone else changed or dropped it, and it is written again.
// The CiliumNode itself is created by the node loop: until it exists there is nothing to write to.
import type { Registry } from 'prom-client';
import type { CiliumNode } from '../../../crds/gen/index.js';
import type { ApiClient } from '../../runtime/apiclient.js';
import { Controller } from '../../runtime/controller.js';
import { ciliumNodes } from '../../runtime/kinds.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import { apply } from '../../runtime/ssa.js';
import { encodeRealized, REALIZED_ANNOTATION, type RealizedReport } from '../../policystatus/realized.js';

export interface RealizedReportWriterOptions {
  client: ApiClient;
  nodeName: string;
  /** A watch of this node's CiliumNode (e.g. the node loop's). */
  node: Resource<CiliumNode>;
  report: () => RealizedReport;
  registry?: Registry;
  logger?: Logger;
}

/** Its own field manager: the annotation is the only field it owns, so the node loop's apply never removes it. */
export function reportFieldManager(nodeName: string): string {
  return `cilium-agent-policy-${nodeName}`;
}

export class RealizedReportWriter {
  readonly controller: Controller;
  private readonly log: Logger;

  constructor(private readonly opts: RealizedReportWriterOptions) {
    this.log = opts.logger ?? newLogger('policy-report');
    this.controller = new Controller({ name: 'policy-report', reconciler: { reconcile: () => this.write() }, registry: opts.registry, logger: this.log });
    this.controller.watch(opts.node, () => [opts.nodeName]);
  }

  /** Writes soon: the report changed. */
  refresh(): void {
    this.controller.enqueue(this.opts.nodeName);
  }

  start(signal: AbortSignal): Promise<void> {
    this.refresh();
    return this.controller.start(signal);
  }

  private async write(): Promise<void> {
    const { nodeName } = this.opts;
    const node = this.opts.node.store.get(nodeName);
    if (node === undefined) return;
    const value = encodeRealized(this.opts.report());
    if (node.metadata.annotations?.[REALIZED_ANNOTATION] === value) return;
    await apply(
      this.opts.client,
      ciliumNodes,
      // Only the annotation: the fields in an apply are the fields this manager claims.
      { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name: nodeName, annotations: { [REALIZED_ANNOTATION]: value } } },
      { fieldManager: reportFieldManager(nodeName) },
    );
    this.log.debug('realized policy report written', { node: nodeName, policies: this.opts.report().size });
  }
}
