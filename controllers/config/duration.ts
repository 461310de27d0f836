// Go's time.ParseDuration syntax, which upstream's duration options use: "15m", "2s", "1h30m",
// "1.5h", "300ms", "0". Values are returned in milliseconds.

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)/gy;

/** Milliseconds in a Go duration string; throws saying what is wrong with it. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0' || s === '+0' || s === '-0') return 0;
  const sign = s.startsWith('-') ? -1 : 1;
  const body = s.replace(/^[-+]/, '');
  if (body === '') throw new Error(`invalid duration ${JSON.stringify(text)}`);
  let total = 0;
  PART.lastIndex = 0;
  let end = 0;
  for (let m = PART.exec(body); m !== null; m = PART.exec(body)) {
    const [, num = '', unit = ''] = m;
    if (num === '' || num === '.') throw new Error(`invalid duration ${JSON.stringify(text)}: missing number before ${JSON.stringify(unit)}`);
    const ms = UNIT_MS[unit];
    if (ms === undefined) throw new Error(`invalid duration ${JSON.stringify(text)}: unknown unit ${JSON.stringify(unit)} (use ns, us, ms, s, m, h)`);
    total += Number(num) * ms;
    end = PART.lastIndex;
  }
  if (end !== body.length) {
    throw new Error(`invalid duration ${JSON.stringify(text)}: ${/^[0-9.]+$/.test(body) ? 'missing unit' : 'expected <number><unit>...'}`);
  }
  return sign * total;
}

/** The Go form of a whole number of milliseconds, for help text and logs ("1h30m", "2s", "0s"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  if (rest > 0) out += `${rest / 1000}s`;
  return out;
}
