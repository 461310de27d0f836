// Per-packet cost of a tc program through BPF_PROG_TEST_RUN, by two methods:
// - repeated: the kernel runs one packet `repeat` times and reports the mean per run; cheapest
//   timer overhead, but only for paths a run does not change (not a new flow: its first run
//   creates the conntrack entry, so later runs are established);
// - single: one run per call, `repeat` 1; every call carries the kernel timer's own cost, so a
//   path measured this way is compared with the no-op measured the same way.

/** One BPF_PROG_TEST_RUN of some program: `durationNs` is the kernel's mean per run. */
export type TestRunner = (packet: Buffer, repeat: number) => { retval: number; durationNs: number };

export interface PerPacket {
  ns: number;
  retval: number;
}

/** Called between batches with the runs since the last call (e.g. to drain the event ring). */
export type BatchHook = (runs: number) => void;

function sameVerdict(what: string, retvals: readonly number[]): number {
  const first = retvals[0]!;
  const other = retvals.findIndex((r) => r !== first);
  if (other >= 0) throw new Error(`per-packet ${what}: run ${other} returned ${retvals[other]}, run 0 returned ${first}; the path changed while measured`);
  return first;
}

/**
 * Repeated method: the median over `rounds` of the kernel's mean per run of `repeat` runs of one
 * packet. The median keeps a round disturbed by an interrupt or the other core's work out.
 */
export function nsPerPacket(what: string, run: TestRunner, packet: Buffer, repeat: number, rounds = 5, afterRound?: BatchHook): PerPacket {
  const samples: number[] = [];
  const retvals: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const result = run(packet, repeat);
    samples.push(result.durationNs);
    retvals.push(result.retval);
    afterRound?.(repeat);
  }
  return { ns: median(samples), retval: sameVerdict(what, retvals) };
}

/**
 * Single method: the median of `count` single runs of `packetFor(i)`, with `afterBatch` called
 * every `batch` runs and after the last.
 */
export function nsPerSingleRun(what: string, run: TestRunner, packetFor: (i: number) => Buffer, count: number, batch = count, afterBatch?: BatchHook): PerPacket {
  const samples: number[] = [];
  const retvals: number[] = [];
  for (let i = 0; i < count; i++) {
    const result = run(packetFor(i), 1);
    samples.push(result.durationNs);
    retvals.push(result.retval);
    if ((i + 1) % batch === 0 || i + 1 === count) afterBatch?.(i % batch + 1);
  }
  return { ns: median(samples), retval: sameVerdict(what, retvals) };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
