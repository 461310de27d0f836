// Struct layouts the TypeScript codecs assume, and their check against the BTF clang emitted for
// the object, so a C change that moves a field fails at load instead of corrupting map entries.
import type { Btf } from '../libbpf/btf.js';

/** Where a member sits and how many bytes it takes; the codecs read and write at these numbers. */
export interface MemberLayout {
  offset: number;
  size: number;
}

export interface StructLayout {
  /** C struct name as it appears in BTF. */
  struct: string;
  size: number;
  /** Every member of the struct. */
  members: Readonly<Record<string, MemberLayout>>;
}

/** A member at `offset` of `size` bytes. */
export function at(offset: number, size: number): MemberLayout {
  return { offset, size };
}

export class LayoutMismatchError extends Error {
  constructor(
    readonly owner: string,
    readonly mismatches: readonly string[],
  ) {
    super(`struct layouts of ${owner} differ from the TypeScript codecs:\n  ${mismatches.join('\n  ')}`);
    this.name = 'LayoutMismatchError';
  }
}

/** The message of a thrown value, which need not be an Error. */
export function describeFailure(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Every difference between `layouts` and `btf`, as "struct.member: ..." lines. */
export function layoutMismatches(btf: Btf, layouts: readonly StructLayout[]): string[] {
  const found: string[] = [];
  for (const layout of layouts) {
    let size: number;
    try {
      size = btf.structSize(layout.struct);
    } catch (err) {
      found.push(`${layout.struct}: not in BTF (${describeFailure(err)})`);
      continue;
    }
    if (size !== layout.size) found.push(`${layout.struct}: size ${size} in BTF, ${layout.size} in codec`);
    for (const [member, want] of Object.entries(layout.members)) {
      let actual: MemberLayout;
      try {
        actual = { offset: btf.memberOffset(layout.struct, member), size: btf.memberSize(layout.struct, member) };
      } catch (err) {
        found.push(`${layout.struct}.${member}: not in BTF (${describeFailure(err)})`);
        continue;
      }
      if (actual.offset !== want.offset) found.push(`${layout.struct}.${member}: offset ${actual.offset} in BTF, ${want.offset} in codec`);
      if (actual.size !== want.size) found.push(`${layout.struct}.${member}: size ${actual.size} in BTF, ${want.size} in codec`);
    }
  }
  return found;
}

export function assertLayouts(btf: Btf, layouts: readonly StructLayout[], owner: string): void {
  const mismatches = layoutMismatches(btf, layouts);
  if (mismatches.length > 0) throw new LayoutMismatchError(owner, mismatches);
}
