// koffi declarations of the libbpf 1.x and libc functions the bindings call. Struct layouts mirror
// /usr/include/bpf/{bpf,libbpf}.h and <linux/bpf.h>; native.test.ts compares them with the C
// compiler's sizeof/offsetof so a header change cannot silently shift a field.
import koffi from 'koffi';
import type { KoffiFunc } from 'koffi';

export const libbpf = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

// Opaque handles owned by libbpf.
koffi.opaque('bpf_object');
koffi.opaque('bpf_map');
koffi.opaque('bpf_program');
koffi.opaque('btf');
koffi.opaque('ring_buffer');

export const MapCreateOpts = koffi.struct('bpf_map_create_opts', {
  sz: 'size_t',
  btf_fd: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  inner_map_fd: 'uint32_t',
  map_flags: 'uint32_t',
  map_extra: 'uint64_t',
  numa_node: 'uint32_t',
  map_ifindex: 'uint32_t',
});

export const MapBatchOpts = koffi.struct('bpf_map_batch_opts', {
  sz: 'size_t',
  elem_flags: 'uint64_t',
  flags: 'uint64_t',
});

export const ObjectOpenOpts = koffi.struct('bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  // `__u32 :32` in the header: the removed attach_prog_fd slot.
  reserved_attach_prog_fd: 'uint32_t',
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
  kernel_log_buf: 'void *',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32_t',
});

export const TestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

export const TcHook = koffi.struct('bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32_t',
});

export const TcOpts = koffi.struct('bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});

export const RingBufferOpts = koffi.struct('ring_buffer_opts', { sz: 'size_t' });

export const MapInfo = koffi.struct('bpf_map_info', {
  type: 'uint32_t',
  id: 'uint32_t',
  key_size: 'uint32_t',
  value_size: 'uint32_t',
  max_entries: 'uint32_t',
  map_flags: 'uint32_t',
  name: koffi.array('char', 16, 'String'),
  ifindex: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  netns_dev: 'uint64_t',
  netns_ino: 'uint64_t',
  btf_id: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  reserved_pad: 'uint32_t',
  map_extra: 'uint64_t',
});

// Leading part of struct bpf_prog_info up to `name`; the kernel accepts a shorter info_len and
// fills only what fits.
export const ProgInfoPrefix = koffi.struct('bpf_prog_info_prefix', {
  type: 'uint32_t',
  id: 'uint32_t',
  tag: koffi.array('uint8_t', 8),
  jited_prog_len: 'uint32_t',
  xlated_prog_len: 'uint32_t',
  jited_prog_insns: 'uint64_t',
  xlated_prog_insns: 'uint64_t',
  load_time: 'uint64_t',
  created_by_uid: 'uint32_t',
  nr_map_ids: 'uint32_t',
  map_ids: 'uint64_t',
  name: koffi.array('char', 16, 'String'),
});

// struct btf_type {name_off, info, size|type} and the btf_member / btf_var_secinfo entries after it.
export const BtfTypeHeader = koffi.struct('btf_type', { name_off: 'uint32_t', info: 'uint32_t', size_or_type: 'uint32_t' });
export const BtfMember = koffi.struct('btf_member', { name_off: 'uint32_t', type: 'uint32_t', offset: 'uint32_t' });
export const BtfVarSecinfo = koffi.struct('btf_var_secinfo', { type: 'uint32_t', offset: 'uint32_t', size: 'uint32_t' });

const PrintFn = koffi.proto('int libbpf_print_fn(int level, const char *fmt, void *args)');
export const PrintFnPtr = koffi.pointer(PrintFn);
const RingBufferSampleFn = koffi.proto('int ring_buffer_sample_fn(void *ctx, void *data, size_t size)');
export const RingBufferSampleFnPtr = koffi.pointer(RingBufferSampleFn);

/** An opaque libbpf pointer as koffi hands it back; null on failure. */
export type Handle = object;

// The signatures below are libbpf's; `int` results are 0/positive on success and -errno on failure
// (libbpf 1.x always behaves so), pointer results are null with errno set.
export const fn = {
  majorVersion: libbpf.func('uint32_t libbpf_major_version(void)') as () => number,
  strerror: libbpf.func('int libbpf_strerror(int err, _Out_ char *buf, size_t size)') as (err: number, buf: Buffer, size: number) => number,
  setPrint: libbpf.func('void *libbpf_set_print(libbpf_print_fn *fn)') as (cb: unknown) => unknown,
  numPossibleCpus: libbpf.func('int libbpf_num_possible_cpus(void)') as () => number,

  mapCreate: libbpf.func('int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const bpf_map_create_opts *opts)') as (
    type: number, name: string, keySize: number, valueSize: number, maxEntries: number, opts: Record<string, number>) => number,
  mapLookup: libbpf.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)') as (fd: number, key: Buffer, value: Buffer) => number,
  mapUpdate: libbpf.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)') as (fd: number, key: Buffer, value: Buffer, flags: number) => number,
  mapDelete: libbpf.func('int bpf_map_delete_elem(int fd, const void *key)') as (fd: number, key: Buffer) => number,
  mapFreeze: libbpf.func('int bpf_map_freeze(int fd)') as (fd: number) => number,
  mapGetNextKey: libbpf.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)') as (fd: number, key: Buffer | null, next: Buffer) => number,
  mapLookupBatch: libbpf.func('int bpf_map_lookup_batch(int fd, void *in_batch, _Out_ void *out_batch, _Out_ void *keys, _Out_ void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)') as (
    fd: number, inBatch: Buffer | null, outBatch: Buffer, keys: Buffer, values: Buffer, count: [number], opts: Record<string, number>) => number,
  mapUpdateBatch: libbpf.func('int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)') as (
    fd: number, keys: Buffer, values: Buffer, count: [number], opts: Record<string, number>) => number,
  mapDeleteBatch: libbpf.func('int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)') as (
    fd: number, keys: Buffer, count: [number], opts: Record<string, number>) => number,
  objGet: libbpf.func('int bpf_obj_get(const char *path)') as (path: string) => number,
  objPin: libbpf.func('int bpf_obj_pin(int fd, const char *path)') as (fd: number, path: string) => number,
  objGetInfoByFd: libbpf.func('int bpf_obj_get_info_by_fd(int fd, _Out_ void *info, _Inout_ uint32_t *info_len)') as (fd: number, info: Buffer, len: [number]) => number,

  objectOpenFile: libbpf.func('bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)') as (path: string, opts: Record<string, unknown>) => Handle | null,
  objectLoad: libbpf.func('int bpf_object__load(bpf_object *obj)') as (obj: Handle) => number,
  objectClose: libbpf.func('void bpf_object__close(bpf_object *obj)') as (obj: Handle) => void,
  objectFindMap: libbpf.func('bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)') as (obj: Handle, name: string) => Handle | null,
  objectNextMap: libbpf.func('bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *map)') as (obj: Handle, prev: Handle | null) => Handle | null,
  objectFindProgram: libbpf.func('bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)') as (obj: Handle, name: string) => Handle | null,
  objectBtf: libbpf.func('btf *bpf_object__btf(const bpf_object *obj)') as (obj: Handle) => Handle | null,
  mapFd: libbpf.func('int bpf_map__fd(const bpf_map *map)') as (map: Handle) => number,
  mapName: libbpf.func('const char *bpf_map__name(const bpf_map *map)') as (map: Handle) => string,
  mapIsInternal: libbpf.func('bool bpf_map__is_internal(const bpf_map *map)') as (map: Handle) => boolean,
  mapInitialValue: libbpf.func('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)') as (map: Handle, size: [number]) => Handle | null,
  programFd: libbpf.func('int bpf_program__fd(const bpf_program *prog)') as (prog: Handle) => number,

  testRun: libbpf.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)') as (fd: number, opts: Record<string, unknown>) => number,

  tcHookCreate: libbpf.func('int bpf_tc_hook_create(bpf_tc_hook *hook)') as (hook: Record<string, number>) => number,
  tcHookDestroy: libbpf.func('int bpf_tc_hook_destroy(bpf_tc_hook *hook)') as (hook: Record<string, number>) => number,
  tcAttach: libbpf.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)') as (hook: Record<string, number>, opts: Record<string, number>) => number,
  tcDetach: libbpf.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)') as (hook: Record<string, number>, opts: Record<string, number>) => number,
  tcQuery: libbpf.func('int bpf_tc_query(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)') as (hook: Record<string, number>, opts: Record<string, number>) => number,

  ringBufferNew: libbpf.func('ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn *cb, void *ctx, const ring_buffer_opts *opts)') as (
    fd: number, cb: unknown, ctx: null, opts: Record<string, number>) => Handle | null,
  ringBufferPoll: libbpf.func('int ring_buffer__poll(ring_buffer *rb, int timeout_ms)') as KoffiFunc<(rb: Handle, timeoutMs: number) => number>,
  ringBufferConsume: libbpf.func('int ring_buffer__consume(ring_buffer *rb)') as (rb: Handle) => number,
  ringBufferFree: libbpf.func('void ring_buffer__free(ring_buffer *rb)') as (rb: Handle) => void,

  btfFindByNameKind: libbpf.func('int btf__find_by_name_kind(const btf *btf, const char *name, uint32_t kind)') as (btf: Handle, name: string, kind: number) => number,
  btfTypeById: libbpf.func('const void *btf__type_by_id(const btf *btf, uint32_t id)') as (btf: Handle, id: number) => Handle | null,
  btfNameByOffset: libbpf.func('const char *btf__name_by_offset(const btf *btf, uint32_t offset)') as (btf: Handle, offset: number) => string | null,
  btfResolveSize: libbpf.func('int64_t btf__resolve_size(const btf *btf, uint32_t id)') as (btf: Handle, id: number) => number,
  btfLoadFromKernelById: libbpf.func('btf *btf__load_from_kernel_by_id(uint32_t id)') as (id: number) => Handle | null,
  btfFree: libbpf.func('void btf__free(btf *btf)') as (btf: Handle) => void,

  close: libc.func('int close(int fd)') as (fd: number) => number,
  mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)') as (
    source: string, target: string, fstype: string, flags: number, data: null) => number,
  fcntl: libc.func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, argType: 'int', arg: number) => number,
  vsnprintf: libc.func('int vsnprintf(_Out_ char *buf, size_t size, const char *fmt, void *args)') as (buf: Buffer, size: number, fmt: string, args: unknown) => number,
};

/** The errno libc left behind after the last call (pointer-returning libbpf functions set it). */
export function lastErrno(): number {
  return koffi.errno();
}

export const F_DUPFD_CLOEXEC = 1030;
