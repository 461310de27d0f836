// How Go's fmt and encoding/json print the values upstream's CLI shows, where JavaScript's
// defaults differ.

/** Go's `%#x`: 0x prefix, lower-case, no padding (0 is "0x0"). */
export function goHex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/** Go's `%#0Nx`: the digits are zero-padded to N, the "0x" comes on top (`%#04x` of 5 is "0x0005"). */
export function goHexWidth(n: number, width: number): string {
  return `0x${(n >>> 0).toString(16).padStart(width, '0')}`;
}

/** Go's `%-Nd`: left-aligned in N columns. */
export function padRight(value: number | string, width: number): string {
  return String(value).padEnd(width, ' ');
}

/** Go's time.Duration String for a whole number of seconds: "0s", "45s", "1m30s", "2h0m5s". */
export function goDurationSeconds(totalSeconds: number): string {
  const s = Math.trunc(totalSeconds);
  if (s === 0) return '0s';
  const sign = s < 0 ? '-' : '';
  const abs = Math.abs(s);
  const h = Math.floor(abs / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const sec = abs % 60;
  if (h > 0) return `${sign}${h}h${m}m${sec}s`;
  if (m > 0) return `${sign}${m}m${sec}s`;
  return `${sign}${sec}s`;
}

// encoding/json escapes these inside strings so its output can sit in HTML.
const GO_JSON_ESCAPES: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/**
 * json.MarshalIndent(v, "", "  ") as upstream's `-o json` prints it. The escaped characters can
 * only occur inside strings, so replacing them in the whole text is safe.
 */
export function goJsonIndent(value: unknown): string {
  return (JSON.stringify(value, null, 2) ?? 'null').replace(/[<>&\u2028\u2029]/g, (c) => GO_JSON_ESCAPES[c]!);
}

/** json.Marshal(v): compact, with Go's escapes. */
export function goJson(value: unknown): string {
  return (JSON.stringify(value) ?? 'null').replace(/[<>&\u2028\u2029]/g, (c) => GO_JSON_ESCAPES[c]!);
}

/**
 * What `-o json` writes: upstream's command.PrintOutput prints the indented document and then an
 * empty line (its JSON dumper prints, then its caller prints the empty rest once more).
 */
export function jsonOutput(value: unknown): string {
  return `${goJsonIndent(value)}\n\n`;
}
