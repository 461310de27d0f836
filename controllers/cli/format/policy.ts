// `cilium policy get` and `cilium policy selectors` (cilium-dbg/cmd/policy_get.go,
// policy_selectors.go).
import type { LabelModel, PolicyModel, SelectorIdentityMappingModel } from '../models.js';
import { compareBytes } from '../text/labels.js';
import { tabwrite } from '../text/tabwriter.js';

export function formatPolicyGet(policy: PolicyModel): string {
  return `${policy.policy ?? ''}\nRevision: ${policy.revision ?? 0}\n`;
}

const POLICY_NAMESPACE_KEY = 'io.cilium.k8s.policy.namespace';
const POLICY_NAME_KEY = 'io.cilium.k8s.policy.name';

// LabelArray.Get("k8s:<key>"): the value of the label with that source and key.
function labelValue(labels: readonly LabelModel[], key: string): string {
  return labels.find((l) => (l.source ?? '') === 'k8s' && l.key === key)?.value ?? '';
}

/** The policies a selector comes from, "namespace/name" each, as upstream's default column. */
function policyNames(lists: readonly LabelModel[][]): string {
  const names: string[] = [];
  for (const labels of lists) {
    const ns = labelValue(labels, POLICY_NAMESPACE_KEY);
    if (ns !== '') names.push(`${ns}/${labelValue(labels, POLICY_NAME_KEY)}`);
  }
  return names.join(',');
}

function labelString(l: LabelModel): string {
  return l.value ? `${l.source ?? ''}:${l.key ?? ''}=${l.value}` : `${l.source ?? ''}:${l.key ?? ''}`;
}

/** `-v`: every label array of the selector, as upstream's LabelArrayList String after its Sort. */
function fullLabels(lists: readonly LabelModel[][]): string {
  return lists
    .map((labels) => `[${labels.map(labelString).join(' ')}]`)
    .sort(compareBytes)
    .join(', ');
}

export function formatSelectors(mappings: readonly SelectorIdentityMappingModel[], opts: { verbose?: boolean } = {}): string {
  const sorted = [...mappings].sort((a, b) => compareBytes(a.selector ?? '', b.selector ?? ''));
  let text = 'SELECTOR\tLABELS\tUSERS\tIDENTITIES\n';
  for (const m of sorted) {
    const lists = m.labels ?? [];
    text += `${m.selector ?? ''}\t${opts.verbose ? fullLabels(lists) : policyNames(lists)}\t${m.users ?? 0}`;
    const ids = m.identities ?? [];
    if (ids.length === 0) text += '\t\n';
    ids.forEach((id, i) => {
      text += i === 0 ? `\t${id}\t\n` : `\t\t\t${id}\t\n`;
    });
  }
  return tabwrite(text, { minwidth: 5, padding: 3 });
}
