// The local cluster's two images, built here because there is no registry: the pause image (our
// static hack/node/pause.c, containerd's sandbox_image) and the test image every node preloads,
// localhost/cilium-ts/testbox:v1 (busybox-static with its applets linked). Each is an OCI archive
// (oci-layout, index.json naming the image, manifest, config, one uncompressed layer) cached under
// a directory keyed by what went into it, and imported with `ctr images import`.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PAUSE_IMAGE = 'localhost/cilium-ts/pause:v1';
export const TESTBOX_IMAGE = 'localhost/cilium-ts/testbox:v1';

const BUSYBOX = '/bin/busybox';
const PAUSE_SOURCE = path.join(import.meta.dirname, 'pause.c');
// The applets tests and users call by name; the rest run as `busybox <applet>`.
const TESTBOX_APPLETS = [
  'sh', 'ash', 'httpd', 'wget', 'nc', 'ping', 'sleep', 'timeout', 'cat', 'echo', 'ls', 'ip', 'ifconfig', 'route',
  'hostname', 'env', 'ps', 'kill', 'mkdir', 'rm', 'cp', 'mv', 'touch', 'grep', 'sed', 'awk', 'head', 'tail', 'wc',
  'date', 'true', 'false', 'test', '[', 'printf', 'id', 'nslookup', 'netstat', 'traceroute', 'seq', 'tr', 'sort', 'uniq', 'dd',
];
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Bumped when the image layout written here changes, so cached archives are rebuilt.
const FORMAT = 'oci-archive-1';

export interface ImageArchive {
  name: string;
  archive: string;
}

interface ImageSpec {
  name: string;
  // Files of the layer, relative to the image root, and how to make each.
  populate(root: string, work: string): Promise<void>;
  entrypoint: string[] | null;
  cmd: string[];
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

async function tarDir(dir: string, out: string): Promise<void> {
  // Reproducible: the same inputs give the same layer digest, whoever builds it.
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', out, '-C', dir, '.']);
}

async function writeBlob(blobs: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = sha256(data);
  await writeFile(path.join(blobs, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

async function buildArchive(spec: ImageSpec, out: string): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-image-'));
  try {
    const root = path.join(work, 'rootfs');
    const layout = path.join(work, 'layout');
    const blobs = path.join(layout, 'blobs', 'sha256');
    await mkdir(root, { recursive: true });
    await mkdir(blobs, { recursive: true });
    await spec.populate(root, work);
    const layerTar = path.join(work, 'layer.tar');
    await tarDir(root, layerTar);
    const layerData = await readFile(layerTar);
    const layer = await writeBlob(blobs, layerData);
    const config = await writeBlob(
      blobs,
      Buffer.from(
        JSON.stringify({
          architecture: goArch(),
          os: 'linux',
          config: { Env: [PATH_ENV], Entrypoint: spec.entrypoint, Cmd: spec.cmd, WorkingDir: '/' },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
          history: [{ created_by: `cilium-ts hack/node/images.ts ${FORMAT}` }],
        }),
      ),
    );
    const manifest = await writeBlob(
      blobs,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
    await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const tag = spec.name.slice(spec.name.lastIndexOf(':') + 1);
    await writeFile(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform: { architecture: goArch(), os: 'linux' },
            annotations: { 'io.containerd.image.name': spec.name, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    const tmp = `${out}.tmp`;
    await tarDir(layout, tmp);
    await rename(tmp, out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function goArch(): string {
  const arch = os.arch();
  return arch === 'x64' ? 'amd64' : arch;
}

const pauseSpec: ImageSpec = {
  name: PAUSE_IMAGE,
  entrypoint: ['/pause'],
  cmd: [],
  async populate(root) {
    try {
      await run('gcc', ['-static', '-Os', '-s', '-o', path.join(root, 'pause'), PAUSE_SOURCE]);
    } catch (err) {
      throw new Error(`pause image: gcc -static could not build ${PAUSE_SOURCE} (apt packages gcc, libc6-dev): ${(err as { stderr?: string }).stderr ?? (err as Error).message}`, { cause: err });
    }
  },
};

const testboxSpec: ImageSpec = {
  name: TESTBOX_IMAGE,
  entrypoint: null,
  cmd: ['sh'],
  async populate(root) {
    const bin = path.join(root, 'bin');
    await mkdir(bin, { recursive: true });
    await copyFile(BUSYBOX, path.join(bin, 'busybox'));
    for (const applet of TESTBOX_APPLETS) await symlink('busybox', path.join(bin, applet));
    for (const dir of ['etc', 'root', 'var/www', 'proc', 'sys', 'dev', 'usr/bin']) await mkdir(path.join(root, dir), { recursive: true });
    // mkdir's mode passes through the umask.
    await mkdir(path.join(root, 'tmp'));
    await chmod(path.join(root, 'tmp'), 0o1777);
    await writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    // `httpd -f -p 8080` serves its working directory (/), `-h /var/www` the usual place.
    for (const page of ['index.html', 'var/www/index.html']) await writeFile(path.join(root, page), 'cilium-ts testbox\n');
  },
};

// What an image is made of; a change to any input gives a new cache directory.
async function cacheKey(): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new Error(`test image: ${BUSYBOX} not found; install the apt package busybox-static`);
  const [busybox, pause, builder] = await Promise.all([readFile(BUSYBOX), readFile(PAUSE_SOURCE), readFile(import.meta.filename)]);
  const { stdout: gcc } = await run('gcc', ['--version']);
  return sha256([FORMAT, sha256(busybox), sha256(pause), sha256(builder), gcc.split('\n')[0]].join('\n')).slice(0, 16);
}

export function imageCacheRoot(): string {
  return path.join(process.env.CILIUM_TS_CACHE ?? path.join(os.homedir(), '.cache', 'cilium-ts'), 'node-images');
}

/** Builds both archives unless this content's are cached; returns them, pause first. */
export async function buildImages(cacheRoot = imageCacheRoot()): Promise<ImageArchive[]> {
  const dir = path.join(cacheRoot, await cacheKey());
  await mkdir(dir, { recursive: true });
  const archives: ImageArchive[] = [];
  for (const [file, spec] of [['pause.tar', pauseSpec], ['testbox.tar', testboxSpec]] as const) {
    const archive = path.join(dir, file);
    if (!existsSync(archive)) await buildArchive(spec, archive);
    archives.push({ name: spec.name, archive });
  }
  return archives;
}

/** Imports the archives into containerd's CRI namespace, where kubelet looks for images. */
export async function importImages(ctr: string, containerdSocket: string, archives: ImageArchive[]): Promise<void> {
  for (const { name, archive } of archives) {
    try {
      await run(ctr, ['-a', containerdSocket, '-n', 'k8s.io', 'images', 'import', archive]);
    } catch (err) {
      throw new Error(`import of ${name} from ${archive} into containerd ${containerdSocket}: ${(err as { stderr?: string }).stderr?.trim() ?? (err as Error).message}`, { cause: err });
    }
  }
}
