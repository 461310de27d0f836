// A compiled BPF ELF object: open (optionally reusing maps pinned by name), set globals, load, and
// hand out its maps, programs and BTF.
import koffi from 'koffi';
import { Btf } from './btf.js';
import { BpfError, check, checkHandle, EINVAL, ENOENT } from './errors.js';
import { dupFd } from './fd.js';
import { withLibbpfWarnings } from './log.js';
import { BpfMap } from './map.js';
import { fn, ObjectOpenOpts, type Handle } from './native.js';
import { BpfProgram } from './prog.js';

export interface ObjectOpenOptions {
  /** libbpf pin_root_path: maps declared with LIBBPF_PIN_BY_NAME are reused from, or pinned into, this bpffs directory. */
  pinRoot?: string;
}

// The kernel (6.4+) keeps the tail of the verifier log when the buffer fills, and the tail is
// where the rejected instruction is.
const VERIFIER_LOG_SIZE = 1 << 20;
const VERIFIER_LOG_TAIL_LINES = 30;

export class BpfObject {
  private handle: Handle | undefined;
  private loaded = false;
  // libbpf keeps this pointer and writes the verifier log into it until the object is closed.
  private readonly verifierLog = Buffer.alloc(VERIFIER_LOG_SIZE);

  private constructor(readonly path: string) {}

  static open(path: string, opts: ObjectOpenOptions = {}): BpfObject {
    const obj = new BpfObject(path);
    const openOpts = {
      sz: koffi.sizeof(ObjectOpenOpts),
      pin_root_path: opts.pinRoot ?? null,
      kernel_log_buf: obj.verifierLog,
      kernel_log_size: obj.verifierLog.length,
    };
    obj.handle = withLibbpfWarnings(() => checkHandle(fn.objectOpenFile(path, openOpts), 'open BPF object', path));
    return obj;
  }

  /**
   * Overwrites a global variable's initial value; only before load(). The variable lives in
   * `section` (".rodata" for `const volatile`, ".data" or ".bss" otherwise).
   */
  setGlobal(name: string, value: Buffer, section = '.rodata'): void {
    const handle = this.live();
    if (this.loaded) throw new BpfError(EINVAL, 'set global after load of', `${this.path} variable ${name}`);
    const btf = this.btf();
    const { offset, size } = btf.globalVariable(section, name);
    if (value.length !== size) throw new BpfError(EINVAL, 'set global', `${name} in ${this.path}`, `value is ${value.length} bytes, variable is ${size}`);
    const map = this.sectionMap(handle, section);
    const mapSize: [number] = [0];
    const data = checkHandle(fn.mapInitialValue(map, mapSize), 'read initial value of', `${section} in ${this.path}`);
    value.copy(Buffer.from(koffi.view(data, mapSize[0])), offset);
  }

  load(): void {
    const handle = this.live();
    // An empty string, so a log left by an earlier BTF or program load is not reported as this one.
    this.verifierLog.fill(0, 0, 1);
    withLibbpfWarnings(() => check(fn.objectLoad(handle), 'load BPF object', this.path), { extraDetail: () => this.verifierLogTail() });
    this.loaded = true;
  }

  /** A map of the loaded object on its own fd: the caller closes it; it outlives the object. */
  map(name: string): BpfMap {
    const map = checkHandle(fn.objectFindMap(this.live(), name), 'find map', `${name} in ${this.path}`);
    const fd = fn.mapFd(map);
    if (fd < 0) throw new BpfError(ENOENT, 'get fd of (not loaded) map', `${name} in ${this.path}`);
    return BpfMap.fromFd(dupFd(fd, `map ${name}`), name);
  }

  /** A program of the loaded object on its own fd: the caller closes it; it outlives the object. */
  program(name: string): BpfProgram {
    const prog = checkHandle(fn.objectFindProgram(this.live(), name), 'find program', `${name} in ${this.path}`);
    const fd = fn.programFd(prog);
    if (fd < 0) throw new BpfError(ENOENT, 'get fd of (not loaded) program', `${name} in ${this.path}`);
    return new BpfProgram(dupFd(fd, `program ${name}`), name);
  }

  /** The object's BTF; valid until close(). */
  btf(): Btf {
    const btf = checkHandle(fn.objectBtf(this.live()), 'get BTF of', this.path);
    return new Btf(btf, this.path, () => this.live());
  }

  close(): void {
    if (this.handle === undefined) return;
    fn.objectClose(this.handle);
    this.handle = undefined;
  }

  private live(): Handle {
    if (this.handle === undefined) throw new BpfError(EINVAL, 'use closed BPF object', this.path);
    return this.handle;
  }

  // libbpf names section maps "<object name prefix><section>", e.g. "fixture.rodata".
  private sectionMap(handle: Handle, section: string): Handle {
    for (let map = fn.objectNextMap(handle, null); map !== null; map = fn.objectNextMap(handle, map)) {
      if (fn.mapIsInternal(map) && fn.mapName(map).endsWith(section)) return map;
    }
    throw new BpfError(ENOENT, 'find section map', `${section} in ${this.path}`);
  }

  private verifierLogTail(): string {
    const end = this.verifierLog.indexOf(0);
    const text = this.verifierLog.toString('utf8', 0, end < 0 ? this.verifierLog.length : end).trimEnd();
    if (text === '') return '';
    return ['verifier log (tail):', ...text.split('\n').slice(-VERIFIER_LOG_TAIL_LINES)].join('\n');
  }
}
