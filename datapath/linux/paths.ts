// Where the datapath's files live: the compiled objects and the pins under the bpffs directory.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ensureBpffs, isBpffs } from '../libbpf/bpffs.js';
import { DatapathError } from './errors.js';

const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** The endpoint programs (cil_from_container, cil_to_container), built by `make -C bpf`. */
export const LXC_OBJECT_PATH = path.join(REPO_ROOT, 'bpf/build/bpf_lxc.o');
/** cil_from_overlay and cil_to_overlay, on cilium_vxlan. */
export const OVERLAY_OBJECT_PATH = path.join(REPO_ROOT, 'bpf/build/bpf_overlay.o');
/** cil_from_host, on cilium_host. */
export const HOST_OBJECT_PATH = path.join(REPO_ROOT, 'bpf/build/bpf_host.o');
/** A tc program that returns TC_ACT_OK: the floor of the per-packet benchmark (program cil_noop). */
export const NOOP_OBJECT_PATH = path.join(REPO_ROOT, 'bpf/build/noop.o');

export const BPFFS_ROOT = '/sys/fs/bpf';
/** Upstream's pin directory for maps shared by every program. */
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/tc/globals';

const POLICY_PIN_PREFIX = 'cilium_policy_';
const POLICY_PIN_NAME = /^cilium_policy_(\d{5})$/;

/** cilium_policy_<5-digit endpoint id>, upstream's per-endpoint naming. */
export function policyMapName(endpointId: number): string {
  return `${POLICY_PIN_PREFIX}${String(endpointId).padStart(5, '0')}`;
}

/** The endpoint id of a policy map pin name, or undefined for any other file. */
export function endpointIdOfPolicyPin(name: string): number | undefined {
  const m = POLICY_PIN_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Makes sure `dir` is a directory on a bpffs. The host bpffs at /sys/fs/bpf is mounted when
 * missing (as the upstream agent does) and the directory created under it; anywhere else the
 * directory must already be on a bpffs: a mount made here would outlive the process with nobody
 * to unmount it.
 */
export function preparePinDir(dir: string): void {
  if (isBpffs(dir)) return;
  if (dir !== BPFFS_ROOT && !dir.startsWith(`${BPFFS_ROOT}/`)) {
    throw new DatapathError(`pin directory ${dir}`, `is not on a bpffs; use a directory under ${BPFFS_ROOT} or mount a bpffs there first`);
  }
  ensureBpffs(BPFFS_ROOT);
  mkdirSync(dir, { recursive: true });
}
