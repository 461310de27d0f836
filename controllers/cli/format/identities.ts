// `cilium identity list|get` (cilium-dbg/cmd/identity_get.go printIdentities): ID and one
// printable label per line; an identity without labels prints no row, as upstream.
import type { IdentityModel } from '../models.js';
import { printableLabels } from '../text/labels.js';
import { tabwrite } from '../text/tabwriter.js';

/** Identities by id, as `identity list` sorts them before printing. */
export function sortIdentities<T extends IdentityModel>(identities: readonly T[]): T[] {
  return [...identities].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
}

export function formatIdentities(identities: readonly IdentityModel[]): string {
  let text = 'ID\tLABELS\n';
  for (const identity of identities) {
    printableLabels(identity.labels).forEach((label, i) => {
      text += i === 0 ? `${identity.id ?? 0}\t${label}\n` : `\t${label}\n`;
    });
  }
  return tabwrite(text, { minwidth: 2, padding: 3 });
}
