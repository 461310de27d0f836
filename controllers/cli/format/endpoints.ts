// `cilium endpoint list` (cilium-dbg/cmd/endpoint_list.go): two header lines, one row per
// security-relevant label with the endpoint's columns on the first.
import type { EndpointModel } from '../models.js';
import { compareBytes } from '../text/labels.js';
import { tabwrite } from '../text/tabwriter.js';

const UNKNOWN = 'Unknown';
const ENABLED = 'Enabled';
const DISABLED = 'Disabled';
const AUDIT = 'Disabled (Audit)';

// models.EndpointPolicyEnabled → (ingress, egress) enforcement columns.
const POLICY_MODES: Record<string, [string, string]> = {
  none: [DISABLED, DISABLED],
  both: [ENABLED, ENABLED],
  ingress: [ENABLED, DISABLED],
  egress: [DISABLED, ENABLED],
  'audit-both': [AUDIT, AUDIT],
  'audit-ingress': [AUDIT, DISABLED],
  'audit-egress': [DISABLED, AUDIT],
};

function policyModes(ep: EndpointModel): [string, string] {
  const realized = ep.status?.policy?.realized;
  if (realized === undefined) return [UNKNOWN, UNKNOWN];
  return POLICY_MODES[realized['policy-enabled'] ?? ''] ?? [UNKNOWN, UNKNOWN];
}

function addresses(ep: EndpointModel): [string, string] {
  const networking = ep.status?.networking;
  if (networking === undefined) return [UNKNOWN, UNKNOWN];
  const first = networking.addressing?.[0];
  if (first === undefined) return ['No address', 'No address'];
  return [first.ipv6 ?? '', first.ipv4 ?? ''];
}

function labels(ep: EndpointModel): string[] {
  const relevant = ep.status?.labels?.['security-relevant'] ?? [];
  return relevant.length === 0 ? ['no labels'] : [...relevant].sort(compareBytes);
}

export function formatEndpointList(endpoints: readonly EndpointModel[], opts: { noHeaders?: boolean } = {}): string {
  const sorted = [...endpoints].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  let text = '';
  if (!opts.noHeaders) {
    text += 'ENDPOINT\tPOLICY (ingress)\tPOLICY (egress)\tIDENTITY\tLABELS (source:key[=value])\tIPv6\tIPv4\tSTATUS\t\n';
    text += '\tENFORCEMENT\tENFORCEMENT\t\t\t\t\t\n';
  }
  for (const ep of sorted) {
    const [ingress, egress] = policyModes(ep);
    const [ipv6, ipv4] = addresses(ep);
    const identity = ep.status?.identity !== undefined ? String(ep.status.identity.id ?? 0) : '<no label id>';
    const state = ep.status?.state ?? UNKNOWN;
    labels(ep).forEach((label, i) => {
      text += i === 0 ? `${ep.id ?? 0}\t${ingress}\t${egress}\t${identity}\t${label}\t${ipv6}\t${ipv4}\t${state}\t\n` : `\t\t\t\t${label}\t\t\t\t\n`;
    });
  }
  return tabwrite(text, { minwidth: 5, padding: 3 });
}
