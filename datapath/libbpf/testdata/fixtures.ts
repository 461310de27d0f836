// Shared by the libbpf tests: builds the fixture C programs, makes scratch bpffs directories and
// crafts packets. Everything returned here is removed by the matching cleanup.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ipv4Bytes } from '../../maps/ipv4.js';
import { runCommand } from '../../netns/run.js';
import { ensureBpffs } from '../bpffs.js';
import { BpfObject } from '../object.js';

export { u32, u64 } from '../bytes.js';
const here = path.dirname(new URL(import.meta.url).pathname);

export const TEST_PREFIX = 'cilium-ts-libbpf-';

/** Compiles testdata/<name>.c for the BPF target into `outDir`; returns the object path. */
export async function compileFixture(name: string, outDir: string): Promise<string> {
  const out = path.join(outDir, `${name}.o`);
  const includeArch = `/usr/include/${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  await runCommand(`compile BPF fixture ${name}.c`, 'clang', ['-O2', '-g', '-target', 'bpf', `-I${includeArch}`, '-c', path.join(here, `${name}.c`), '-o', out]);
  return out;
}

export function makeTempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), TEST_PREFIX));
}

/** A fresh directory on the host bpffs (mounted if the host has none); remove it with removeDir. */
export function makeBpffsDir(prefix = TEST_PREFIX): string {
  ensureBpffs('/sys/fs/bpf');
  return mkdtempSync(path.join('/sys/fs/bpf', prefix));
}

export function removeDir(dir: string | undefined): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

/** The compiled fixture object and a bpffs directory for its pinned maps, for one test suite. */
export interface FixtureSuite {
  objectPath: string;
  pinDir: string;
  /** Opens (without loading) the fixture with pinDir as its pin root; the caller closes it. */
  open(): BpfObject;
  /** Removes the build and pin directories. */
  remove(): void;
}

export async function fixtureSuite(): Promise<FixtureSuite> {
  const buildDir = makeTempDir();
  let pinDir: string | undefined;
  try {
    pinDir = makeBpffsDir();
    const objectPath = await compileFixture('fixture', buildDir);
    const pins = pinDir;
    return {
      objectPath,
      pinDir: pins,
      open: () => BpfObject.open(objectPath, { pinRoot: pins }),
      remove: () => {
        removeDir(pins);
        removeDir(buildDir);
      },
    };
  } catch (err) {
    removeDir(pinDir);
    removeDir(buildDir);
    throw err;
  }
}

/** Runs tc (iproute2) with an argument vector, to see what libbpf's netlink calls left behind. */
export async function tc(...args: string[]): Promise<string> {
  return (await runCommand('inspect tc state', 'tc', args)).stdout;
}

export interface Ipv4PacketSpec {
  protocol: number;
  src: string;
  dst: string;
  /** Bytes after the IPv4 header (an L4 header, zero-filled when omitted). */
  payload?: Buffer;
}

/** An Ethernet + IPv4 frame with a valid header checksum. */
export function ipv4Packet(spec: Ipv4PacketSpec): Buffer {
  const payload = spec.payload ?? Buffer.alloc(8);
  const frame = Buffer.alloc(14 + 20 + payload.length);
  Buffer.from([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]).copy(frame, 0);
  frame.writeUInt16BE(0x0800, 12);
  const ip = frame.subarray(14, 34);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + payload.length, 2);
  ip[8] = 64;
  ip[9] = spec.protocol;
  ipv4Bytes(spec.src).copy(ip, 12);
  ipv4Bytes(spec.dst).copy(ip, 16);
  setIPv4Checksum(ip);
  payload.copy(frame, 34);
  return frame;
}

/** Writes the header checksum of the 20-byte IPv4 header `ip`. */
export function setIPv4Checksum(ip: Buffer): void {
  ip.writeUInt16BE(0, 10);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  ip.writeUInt16BE(~sum & 0xffff, 10);
}

