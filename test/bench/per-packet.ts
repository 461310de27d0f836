// Per-packet cost of a tc program through BPF_PROG_TEST_RUN: the kernel times `repeat` runs of
// the same packet and reports the mean, so syscall and FFI overhead stay out of the number.

/** One BPF_PROG_TEST_RUN of some program: `durationNs` is the kernel's mean per run. */
export type TestRunner = (packet: Buffer, repeat: number) => { retval: number; durationNs: number };

export interface PerPacket {
  ns: number;
  retval: number;
}

/**
 * The median over `rounds` of the kernel's mean time per run for `repeat` runs of one packet.
 * The median keeps one round disturbed by an interrupt or the other core's work out of the result.
 */
export function nsPerPacket(run: TestRunner, packet: Buffer, repeat: number, rounds = 5): PerPacket {
  const samples: number[] = [];
  let retval = 0;
  for (let i = 0; i < rounds; i++) {
    const result = run(packet, repeat);
    samples.push(result.durationNs);
    retval = result.retval;
  }
  return { ns: median(samples), retval };
}

/**
 * For paths whose first run changes state (a new flow creates its conntrack entry, after which the
 * same packet is established), each packet is run once: `packetFor(i)` must give a fresh flow.
 * Single runs carry the kernel timer's own cost, so the floor should be measured the same way.
 */
export function nsPerSingleRun(run: TestRunner, packetFor: (i: number) => Buffer, count: number): PerPacket {
  const samples: number[] = [];
  let retval = 0;
  for (let i = 0; i < count; i++) {
    const result = run(packetFor(i), 1);
    samples.push(result.durationNs);
    retval = result.retval;
  }
  return { ns: median(samples), retval };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
