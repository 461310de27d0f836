// GetFlows' selection over the ring, as upstream's observer reads it: where to start (the first
// flow, the last `number` matching flows, the first one since `since`, or only new ones when
// following), then forward until the head (or on and on when following), `number` flows at most,
// stopping at the first flow after `until`. Lost-event markers pass every filter and count for
// nothing; a follower overtaken by the writer is told how many it missed (HUBBLE_RING_BUFFER).
import type { FlowPredicate } from '../../hubble/filter.js';
import { type HubbleEvent, timestampMs, timestampOf } from '../../hubble/flow-types.js';
import type { FlowRing } from './ring.js';

export interface FlowsQuery {
  /** 0: no limit. */
  number: number;
  first: boolean;
  follow: boolean;
  sinceMs?: number;
  untilMs?: number;
  matches: FlowPredicate;
}

export class FlowsQueryError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'FlowsQueryError';
  }
}

function startOf(ring: FlowRing, q: FlowsQuery): number {
  if (q.first && q.sinceMs === undefined) return ring.oldest;
  if (q.follow && q.number === 0 && q.sinceMs === undefined) return ring.head;
  let count = 0;
  for (let seq = ring.head - 1; seq >= ring.oldest; seq--) {
    const ev = ring.at(seq);
    if (ev?.flow === undefined || !q.matches(ev.flow)) continue;
    count++;
    if (q.sinceMs !== undefined) {
      if (timestampMs(ev.time) < q.sinceMs) return seq + 1;
    } else if (count === q.number) return seq;
  }
  return ring.oldest;
}

export async function* readFlows(ring: FlowRing, q: FlowsQuery, signal: AbortSignal): AsyncGenerator<HubbleEvent> {
  if (q.first && q.follow) throw new FlowsQueryError('first cannot be specified with follow');
  let seq = startOf(ring, q);
  let sent = 0;
  while (!signal.aborted) {
    if (!q.follow && q.number > 0 && sent >= q.number) return;
    if (seq < ring.oldest) {
      const missed = ring.oldest - seq;
      seq = ring.oldest;
      const now = timestampOf(Date.now());
      yield { time: now, lost: { source: 'HUBBLE_RING_BUFFER', num_events_lost: String(missed), first: now, last: now } };
      continue;
    }
    if (seq >= ring.head) {
      if (!q.follow) return;
      await ring.nextWrite(signal);
      continue;
    }
    const ev = ring.at(seq++)!;
    if (ev.flow !== undefined) {
      const ms = timestampMs(ev.time);
      if (q.untilMs !== undefined && ms > q.untilMs) return;
      if (q.sinceMs !== undefined && ms < q.sinceMs) continue;
      if (!q.matches(ev.flow)) continue;
      sent++;
    }
    yield ev;
  }
}
