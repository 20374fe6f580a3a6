import { realpath } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, resolve } from 'node:path'
import { PathOutsideDataDirError } from './errors.js'
import { isWithin } from './qemu/vm-paths.js'
import type { VmSpec } from './types.js'

/** The agent's own image store, inside its data dir: any image placed there may boot a guest. */
export const IMAGE_STORE_DIR = 'images'
/** Where a host keeps the replicas it holds: a disk may be *imported* from there (promotion), nothing else. */
export const REPLICA_STORE_DIR = 'replicas'

/** What a guest's boot file or disk is read from: a kernel, an initrd, a base image, an imported disk. */
export type ImageUse = 'kernel' | 'initrd' | 'base image' | 'imported image'

export interface ImageSourcesInit {
  /** The operator's image dirs; `'any'` for a driver that reads no file (the simulated one). */
  imageDirs: readonly string[] | 'any'
  /** The host's data dir: never a source (keys, state database, other VMs' disks), except its two stores. */
  dataDir?: string
  /** More files or dirs never read as a source, wherever they are (the cluster key file). */
  secrets?: readonly string[]
}

/**
 * Where guest images may come from. A path is checked as the kernel will open it: symlinks and
 * `..` are resolved first (for a file that does not exist yet, its nearest existing ancestor is),
 * so no spelling reaches a host secret. Allowed: the operator's image dirs and the agent's image
 * store; imported disks also from the replica store. Never: anything in the data dir outside
 * those stores (identity and cluster keys, monitor token, state database, other VMs' files), nor
 * a listed secret, even when an image dir contains it.
 */
export class ImageSources {
  private readonly imageDirs: readonly string[] | 'any'
  private readonly dataDir: string | undefined
  private readonly secrets: readonly string[]

  constructor (init: ImageSourcesInit) {
    this.imageDirs = init.imageDirs === 'any' ? 'any' : init.imageDirs.map((d) => resolve(d))
    this.dataDir = init.dataDir === undefined ? undefined : resolve(init.dataDir)
    this.secrets = (init.secrets ?? []).map((s) => resolve(s))
  }

  /** The dirs an operator may put images in, for error messages. */
  describe (): string {
    const dirs = [...this.imageDirs === 'any' ? [] : this.imageDirs, ...this.dataDir !== undefined ? [join(this.dataDir, IMAGE_STORE_DIR)] : []]
    return dirs.join(', ')
  }

  /** The real path of `path` if a guest may read it as `use`; throws PathOutsideDataDirError otherwise. */
  async check (path: string, use: ImageUse): Promise<string> {
    if (!isAbsolute(path)) throw new PathOutsideDataDirError(`${use} ${path} must be an absolute path`)
    const real = await realPathOf(path)
    const shown = real === path ? path : `${path} (${real})`
    const stores = this.dataDir === undefined ? [] : await Promise.all([IMAGE_STORE_DIR, ...use === 'imported image' ? [REPLICA_STORE_DIR] : []].map(async (d) => await realPathOf(join(this.dataDir as string, d))))
    const inStore = stores.some((s) => isWithin(s, real))
    for (const secret of [...this.dataDir !== undefined ? [this.dataDir] : [], ...this.secrets]) {
      if (inStore && secret === this.dataDir) continue
      if (isWithin(await realPathOf(secret), real)) {
        throw new PathOutsideDataDirError(`${use} ${shown} is inside ${secret}, which holds this host's keys, state or other VMs' disks: never a boot source`)
      }
    }
    if (inStore || this.imageDirs === 'any') return real
    for (const dir of this.imageDirs) if (isWithin(await realPathOf(dir), real)) return real
    throw new PathOutsideDataDirError(`${use} ${shown} is outside the image dirs (${this.describe() || 'none'}): copy it there or add its dir with --image-dir`)
  }
}

/** `realpath`, for a path that may not exist yet: its nearest existing ancestor's real path, then the rest. */
async function realPathOf (path: string): Promise<string> {
  try {
    return await realpath(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const parent = dirname(path)
    if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === path) return resolve(path)
    return join(await realPathOf(parent), basename(path))
  }
}

/** The spec with every image path it reads checked and replaced by its real path. */
export async function checkSpecImages (spec: VmSpec, sources: ImageSources): Promise<VmSpec> {
  const boot = spec.boot.kind === 'kernel'
    ? {
        ...spec.boot,
        kernel: await sources.check(spec.boot.kernel, 'kernel'),
        ...(spec.boot.initrd !== undefined ? { initrd: await sources.check(spec.boot.initrd, 'initrd') } : {})
      }
    : spec.boot
  const disks = spec.disks === undefined
    ? undefined
    : await Promise.all(spec.disks.map(async (d) => ({
      ...d,
      ...(d.base !== undefined ? { base: await sources.check(d.base, 'base image') } : {}),
      ...(d.importFrom !== undefined ? { importFrom: await sources.check(d.importFrom, 'imported image') } : {})
    })))
  return { ...spec, boot, ...(disks !== undefined ? { disks } : {}) }
}
