// GetFlowsRequest.field_mask: a flow is sent with only the masked fields (`time`, `source.pod_name`,
// ...), as upstream's observer copies them; an empty mask sends the whole flow.
import type { Flow } from './flow-types.js';

interface MaskNode {
  [field: string]: MaskNode | true;
}

export class FieldMaskError extends Error {
  constructor(path: string, reason: string) {
    super(`invalid field_mask path ${JSON.stringify(path)}: ${reason}`);
    this.name = 'FieldMaskError';
  }
}

export type FlowMask = (flow: Flow) => Partial<Flow>;

/** `paths` compiled; each must name a field of flow.Flow, checked against `fieldsOf` (a message's field names). */
export function compileFieldMask(paths: readonly string[], fieldsOf: (path: string[]) => readonly string[] | undefined): FlowMask | undefined {
  if (paths.length === 0) return undefined;
  const root: MaskNode = {};
  for (const path of paths) {
    const parts = path.split('.');
    let node = root;
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      if (!(fieldsOf(parts.slice(0, i)) ?? []).includes(name)) throw new FieldMaskError(path, `${parts.slice(0, i + 1).join('.')} is not a field of flow.Flow`);
      if (i === parts.length - 1) node[name] = true;
      else {
        const next = node[name];
        if (next === true) break;
        node = node[name] = next ?? {};
      }
    }
  }
  return (flow) => copy(flow as unknown as Record<string, unknown>, root);
}

function copy(from: Record<string, unknown>, mask: MaskNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, sub] of Object.entries(mask)) {
    const value = from[name];
    if (value === undefined || value === null) continue;
    out[name] = sub === true || typeof value !== 'object' || Array.isArray(value) ? value : copy(value as Record<string, unknown>, sub);
  }
  return out;
}
