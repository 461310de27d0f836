// Go's text/tabwriter, which upstream's CLI lays its tables out with: cells end at a tab, a column
// is as wide as its widest cell plus padding within a block of consecutive lines that have that
// cell, and the text after a line's last tab is not part of any column. Reproducing the
// algorithm, not an approximation of it, keeps our tables byte-for-byte those of cilium-dbg
// (trailing spaces included), so outputs can be compared line by line.

export interface TabwriterOptions {
  /** Smallest cell width, padding included. */
  minwidth: number;
  /** Spaces added to the widest cell of a column. */
  padding: number;
}

// Go measures cells in runes (UTF-8 code points), not bytes or UTF-16 units.
function runeWidth(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** `text` (cells separated by tabs, lines by newlines) laid out as Go's tabwriter with flags 0. */
export function tabwrite(text: string, opts: TabwriterOptions): string {
  const lines = text.split('\n').map((line) => line.split('\t'));
  // Go terminates the unfinished last cell at Flush only when it holds text.
  const last = lines[lines.length - 1]!;
  if (last.length > 1 && last[last.length - 1] === '') last.pop();
  const out: string[] = [];
  const widths: number[] = [];

  const writeLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      let line = '';
      cells.forEach((cell, j) => {
        line += cell;
        if (j < widths.length) line += ' '.repeat(Math.max(0, widths[j]! - runeWidth(cell)));
      });
      out.push(line);
    }
  };

  // Go's format(): a column block is a run of lines that have a terminated cell in this column.
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    let start = line0;
    for (let at = line0; at < line1; at++) {
      if (column >= lines[at]!.length - 1) continue;
      writeLines(start, at);
      start = at;
      let width = opts.minwidth;
      for (; at < line1; at++) {
        const cells = lines[at]!;
        if (column >= cells.length - 1) break;
        width = Math.max(width, runeWidth(cells[column]!) + opts.padding);
      }
      widths.push(width);
      format(start, at);
      widths.pop();
      // The line that ended the block lacks this column: the loop's increment may pass it.
      start = at;
    }
    writeLines(start, line1);
  };

  format(0, lines.length);
  return out.join('\n');
}

/** Rows of cells written as Go code writes them with "%s\t%s\n" (every cell tab-terminated but the last). */
export function tabwriteRows(rows: readonly (readonly string[])[], opts: TabwriterOptions): string {
  return tabwrite(rows.map((r) => `${r.join('\t')}\n`).join(''), opts);
}
