// Times as the hubble CLI reads and prints them (hubble/pkg/time): --since/--until take a Go
// duration into the past or one of upstream's layouts; flows print in UTC in the layout
// --time-format names (StampMilli by default).
import { parseDuration } from '../../config/duration.js';
import { type Timestamp, timestampOf } from '../flow-types.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

export const TIME_FORMATS = ['YearMonthDay', 'YearMonthDayHour', 'YearMonthDayHourMinute', 'StampMilli', 'RFC3339', 'RFC3339Milli', 'RFC3339Micro', 'RFC3339Nano', 'RFC1123Z'] as const;
export type TimeFormat = (typeof TIME_FORMATS)[number];

/** Upstream FormatNameToLayout: case-insensitive, anything unknown is StampMilli. */
export function timeFormatOf(name: string): TimeFormat {
  return TIME_FORMATS.find((f) => f.toLowerCase() === name.toLowerCase()) ?? 'StampMilli';
}

const ZONE = String.raw`(Z|[+-]\d{2}:\d{2})`;
// Upstream's parse layouts, in its order (local-time-only layouts are not among them).
const LAYOUTS: RegExp[] = [
  /^(\d{4})-(\d{2})-(\d{2})$/,
  new RegExp(String.raw`^(\d{4})-(\d{2})-(\d{2})T(\d{2})${ZONE}$`),
  new RegExp(String.raw`^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})${ZONE}$`),
  new RegExp(String.raw`^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?${ZONE}$`),
];
const RFC1123Z = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})$/;

function zoneOffsetMs(zone: string): number {
  if (zone === 'Z') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000;
}

function fromParts(y: string, mo: string, d: string, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'): Timestamp {
  const seconds = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000 - zoneOffsetMs(zone) / 1000;
  return { seconds: String(seconds), nanos: frac === '' ? 0 : Number(frac.slice(1).padEnd(9, '0')) };
}

/** Upstream hubtime.FromString: a duration before `nowMs`, else an absolute time in one of the layouts. */
export function parseTime(input: string, nowMs: number): Timestamp {
  try {
    return timestampOf(nowMs - parseDuration(input));
  } catch {
    // not a duration: one of the layouts
  }
  for (const re of LAYOUTS) {
    const m = re.exec(input);
    if (m === null) continue;
    const [, y = '', mo = '', d = '', ...rest] = m;
    if (re === LAYOUTS[0]) return fromParts(y, mo, d);
    if (re === LAYOUTS[1]) return fromParts(y, mo, d, rest[0], '0', '0', '', rest[1]);
    if (re === LAYOUTS[2]) return fromParts(y, mo, d, rest[0], rest[1], '0', '', rest[2]);
    return fromParts(y, mo, d, rest[0], rest[1], rest[2], rest[3] ?? '', rest[4]);
  }
  const r = RFC1123Z.exec(input);
  if (r !== null) {
    const zone = r[7]!;
    return fromParts(r[3]!, String(MONTHS.indexOf(r[2]!) + 1), r[1]!, r[4], r[5], r[6], '', `${zone.slice(0, 3)}:${zone.slice(3)}`);
  }
  throw new Error(`failed to convert ${input} to time`);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

// Go's ".999..." layouts: the fraction without trailing zeros, no dot when it is zero.
function trimmedFraction(nanos: number, digits: number): string {
  const f = String(nanos).padStart(9, '0').slice(0, digits).replace(/0+$/, '');
  return f === '' ? '' : `.${f}`;
}

/** A flow's time as upstream prints it (UTC); "N/A" when there is none. */
export function formatTime(ts: Timestamp | null | undefined, format: TimeFormat): string {
  if (ts === null || ts === undefined) return 'N/A';
  const d = new Date(Number(ts.seconds) * 1000);
  const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const hms = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  switch (format) {
    case 'YearMonthDay':
      return date;
    case 'YearMonthDayHour':
      return `${date}T${pad(d.getUTCHours())}Z`;
    case 'YearMonthDayHourMinute':
      return `${date}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}Z`;
    case 'RFC3339':
      return `${date}T${hms}Z`;
    case 'RFC3339Milli':
      return `${date}T${hms}${trimmedFraction(ts.nanos, 3)}Z`;
    case 'RFC3339Micro':
      return `${date}T${hms}${trimmedFraction(ts.nanos, 6)}Z`;
    case 'RFC3339Nano':
      return `${date}T${hms}${trimmedFraction(ts.nanos, 9)}Z`;
    case 'RFC1123Z':
      return `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${hms} +0000`;
    case 'StampMilli':
      return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${hms}.${pad(Math.floor(ts.nanos / 1e6), 3)}`;
  }
}
