// Peer identities' labels for the tables that print them (ip list, bpf policy get), asked of the
// agent once per id.
import { agentErrorText, type CliContext } from '../context.js';
import type { IdentityModel } from '../models.js';
import { printableLabels } from '../text/labels.js';

/**
 * Identity labels by id, each asked of the agent once. An id the agent cannot describe resolves to
 * undefined (the caller prints the number) after upstream's message on stderr.
 */
export class IdentityLabels {
  private readonly known = new Map<number, string[] | undefined>();

  constructor(
    private readonly ctx: CliContext,
    private readonly onError: (id: number, reason: string) => string,
  ) {}

  async prefetch(ids: Iterable<number>): Promise<void> {
    const missing = [...new Set(ids)].filter((id) => !this.known.has(id));
    await Promise.all(
      missing.map((id) =>
        this.ctx.client.request<IdentityModel>('GET', `/identity/${id}`).then(
          (identity) => void this.known.set(id, printableLabels(identity.labels)),
          (err: unknown) => {
            this.ctx.io.stderr(this.onError(id, agentErrorText(err)));
            this.known.set(id, undefined);
          },
        ),
      ),
    );
  }

  readonly labelsOf = (id: number): string[] | undefined => this.known.get(id);
}
