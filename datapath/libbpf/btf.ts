// Reads struct layouts and global-variable placement out of BTF, so TypeScript codecs can be
// checked against what clang actually laid out.
import koffi from 'koffi';
import { BpfError, check, checkHandle, EINVAL, ENOENT } from './errors.js';
import { BtfMember, BtfTypeHeader, BtfVarSecinfo, fn, type Handle } from './native.js';

// BTF_KIND_* from <linux/btf.h>.
const KIND_STRUCT = 4;
const KIND_UNION = 5;
const KIND_TYPEDEF = 8;
const KIND_VOLATILE = 9;
const KIND_CONST = 10;
const KIND_RESTRICT = 11;
const KIND_DATASEC = 15;
const KIND_TYPE_TAG = 18;
const QUALIFIERS = new Set([KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG]);

const HEADER_SIZE = koffi.sizeof(BtfTypeHeader);

interface TypeHeader {
  id: number;
  name: string;
  kind: number;
  vlen: number;
  kindFlag: boolean;
  /** Size for structs, unions and datasecs; referenced type id for qualifiers and typedefs. */
  sizeOrType: number;
  ptr: Handle;
}

interface Member {
  name: string;
  type: number;
  bitOffset: number;
}

export interface FieldLayout {
  /** Byte offset from the start of the outermost struct. */
  offset: number;
  size: number;
}

export class Btf {
  private released = false;

  /**
   * `owner` names where the BTF came from in errors. `assertUsable` lets the owner veto use after
   * it freed the BTF (an object's BTF dies with the object); `free` is set when this wrapper owns it.
   */
  constructor(
    private readonly handle: Handle,
    private readonly owner: string,
    private readonly assertUsable: () => void = () => undefined,
    private readonly free?: () => void,
  ) {}

  /** BTF the kernel holds under `id` (e.g. a pinned map's btf_id); close() frees it. */
  static fromKernelId(id: number): Btf {
    const handle = checkHandle(fn.btfLoadFromKernelById(id), 'load kernel BTF', `id ${id}`);
    return new Btf(handle, `kernel BTF ${id}`, undefined, () => fn.btfFree(handle));
  }

  structSize(name: string): number {
    return this.structType(name).sizeOrType;
  }

  /**
   * Byte offset of `member`; a dotted path ("tuple.dport") walks nested structs, and members of
   * anonymous structs and unions are found as if they were declared directly.
   */
  memberOffset(struct: string, member: string): number {
    return this.member(struct, member).offset;
  }

  memberSize(struct: string, member: string): number {
    return this.member(struct, member).size;
  }

  /** Where a global variable sits inside its section map's value (".rodata", ".data", ".bss"). */
  globalVariable(section: string, variable: string): FieldLayout {
    this.usable();
    const what = `${section} variable ${variable} in ${this.owner}`;
    const datasec = this.header(check(fn.btfFindByNameKind(this.handle, section, KIND_DATASEC), 'find BTF datasec', `${section} in ${this.owner}`));
    const vars = koffi.decode(datasec.ptr, HEADER_SIZE, BtfVarSecinfo, datasec.vlen) as Array<{ type: number; offset: number; size: number }>;
    for (const v of vars) {
      if (this.header(v.type).name === variable) return { offset: v.offset, size: v.size };
    }
    throw new BpfError(ENOENT, 'find BTF', what);
  }

  close(): void {
    if (this.released) return;
    this.released = true;
    this.free?.();
  }

  private member(struct: string, path: string): FieldLayout {
    let type = this.structType(struct);
    let offset = 0;
    const parts = path.split('.');
    for (const [i, part] of parts.entries()) {
      const found = this.findMember(type, part);
      if (found === undefined) throw new BpfError(ENOENT, 'find BTF member', `${struct}.${path} in ${this.owner}`);
      if (found.bitOffset % 8 !== 0) throw new BpfError(EINVAL, 'byte offset of BTF bitfield', `${struct}.${path} in ${this.owner}`);
      offset += found.bitOffset / 8;
      if (i === parts.length - 1) {
        return { offset, size: check(fn.btfResolveSize(this.handle, found.type), 'resolve BTF size of', `${struct}.${path} in ${this.owner}`) };
      }
      type = this.resolve(found.type);
      if (type.kind !== KIND_STRUCT && type.kind !== KIND_UNION) throw new BpfError(EINVAL, 'descend into non-struct BTF member', `${struct}.${parts.slice(0, i + 1).join('.')} in ${this.owner}`);
    }
    throw new BpfError(EINVAL, 'find BTF member', `${struct}.${path} (empty path) in ${this.owner}`);
  }

  /** Depth-first through anonymous members; bitOffset is relative to `type`. */
  private findMember(type: TypeHeader, name: string): Member | undefined {
    for (const m of this.members(type)) {
      if (m.name === name) return m;
      if (m.name === '') {
        const inner = this.resolve(m.type);
        if (inner.kind !== KIND_STRUCT && inner.kind !== KIND_UNION) continue;
        const found = this.findMember(inner, name);
        if (found !== undefined) return { ...found, bitOffset: m.bitOffset + found.bitOffset };
      }
    }
    return undefined;
  }

  private members(type: TypeHeader): Member[] {
    const raw = koffi.decode(type.ptr, HEADER_SIZE, BtfMember, type.vlen) as Array<{ name_off: number; type: number; offset: number }>;
    // With kind_flag set the top 8 bits carry a bitfield size and the low 24 bits the offset.
    return raw.map((m) => ({ name: this.name(m.name_off), type: m.type, bitOffset: type.kindFlag ? m.offset & 0xffffff : m.offset }));
  }

  private structType(name: string): TypeHeader {
    this.usable();
    return this.header(check(fn.btfFindByNameKind(this.handle, name, KIND_STRUCT), 'find BTF struct', `${name} in ${this.owner}`));
  }

  private resolve(id: number): TypeHeader {
    let type = this.header(id);
    while (QUALIFIERS.has(type.kind)) type = this.header(type.sizeOrType);
    return type;
  }

  private header(id: number): TypeHeader {
    const ptr = checkHandle(fn.btfTypeById(this.handle, id), 'read BTF type', `id ${id} in ${this.owner}`);
    const raw = koffi.decode(ptr, BtfTypeHeader) as { name_off: number; info: number; size_or_type: number };
    return {
      id,
      name: this.name(raw.name_off),
      kind: (raw.info >>> 24) & 0x1f,
      vlen: raw.info & 0xffff,
      kindFlag: raw.info >>> 31 === 1,
      sizeOrType: raw.size_or_type,
      ptr,
    };
  }

  private name(offset: number): string {
    return offset === 0 ? '' : (fn.btfNameByOffset(this.handle, offset) ?? '');
  }

  private usable(): void {
    if (this.released) throw new BpfError(EINVAL, 'use closed BTF', this.owner);
    this.assertUsable();
  }
}
