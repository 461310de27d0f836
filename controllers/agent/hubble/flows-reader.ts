// GetFlows' selection over the ring, as upstream's observer reads it: where to start (the first
// flow, the last `number` matching flows, the first one since `since`, or only new ones when
// following), then forward until the head (or on and on when following), `number` flows at most,
// stopping at the first flow after `until`. Lost-event markers pass every filter and count for
// nothing; a follower overtaken by the writer is told how many it missed (HUBBLE_RING_BUFFER).
import type { FlowPredicate } from '../../hubble/filter.js';
import { type HubbleEvent, timestampMs, timestampOf } from '../../hubble/flow-types.js';
import type { FlowHistory } from './history/store.js';
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

// The time of the ring's oldest event; flows before it are only in the history.
function ringStartMs(ring: FlowRing): number {
  const ev = ring.at(ring.oldest);
  return ev === undefined ? Infinity : timestampMs(ev.time);
}

/**
 * readFlows, preceded by the history's flows when `since` reaches back before the ring: each
 * flow once (the history gives what is older than the ring's oldest event, the ring the rest,
 * also when the ring moves on while the history is read), `number` counted across both.
 */
export async function* readFlowsWithHistory(ring: FlowRing, history: FlowHistory | undefined, q: FlowsQuery, signal: AbortSignal): AsyncGenerator<HubbleEvent> {
  if (history === undefined || q.sinceMs === undefined || q.first) {
    yield* readFlows(ring, q, signal);
    return;
  }
  let from = q.sinceMs;
  let sent = 0;
  for (;;) {
    const boundary = ringStartMs(ring);
    if (from < boundary) {
      const until = q.untilMs === undefined ? boundary : Math.min(q.untilMs, boundary);
      for await (const flows of history.read(from, until, signal)) {
        for (const flow of flows) {
          if (timestampMs(flow.time) >= boundary || !q.matches(flow)) continue;
          yield { time: flow.time, flow };
          sent++;
          if (!q.follow && q.number > 0 && sent >= q.number) return;
        }
      }
    }
    if (q.untilMs !== undefined && q.untilMs < boundary) return;
    if (signal.aborted) return;
    // The ring moved on while the history was read: what it let go is in the history now.
    if (ringStartMs(ring) <= boundary) {
      const number = q.number > 0 && !q.follow ? q.number - sent : q.number;
      // An empty ring had nothing the history read: everything it holds now came after.
      yield* readFlows(ring, { ...q, number, sinceMs: boundary === Infinity ? q.sinceMs : Math.max(q.sinceMs, boundary) }, signal);
      return;
    }
    from = Math.max(from, boundary);
  }
}
