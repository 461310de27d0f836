// The `labels` filter of GET /endpoint and GET /identity. Upstream's clients send it as a JSON
// array in the body (swagger `in: body`, even on GET); our CLI may send `?labels=a,b`. A label
// without a source (or with `any`/`unspec`) matches that key under every source.
import { LabelSet, parseLabel, SOURCE_ANY, type Label } from '../labels/labels.js';
import { badRequest } from './errors.js';
import type { ApiRequest } from './router.js';
import { jsonBody } from './server.js';

export function requestedLabels(req: Pick<ApiRequest, 'body' | 'query'>): Label[] {
  const texts = req.query.getAll('labels').flatMap((v) => v.split(',')).filter((t) => t !== '');
  const body = jsonBody(req, 'labels');
  if (body !== undefined && body !== null) {
    if (!Array.isArray(body) || body.some((l) => typeof l !== 'string')) throw badRequest('labels', 'the body must be a JSON array of label strings');
    texts.push(...(body as string[]));
  }
  return texts.map(parseLabel);
}

/** Whether `have` (as `source:key=value` strings) carries every one of `wanted`. */
export function hasLabels(have: readonly string[], wanted: readonly Label[]): boolean {
  if (wanted.length === 0) return true;
  const set = LabelSet.parse(have);
  return wanted.every((w) => set.get(w.key, w.source === 'unspec' ? SOURCE_ANY : w.source) === w.value);
}
