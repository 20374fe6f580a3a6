import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { formatSize, imageView, type ImageView } from '@meshvirt/agent'
import { UsageError, type Command, type CommandContext } from '../command.js'
import { renderTable } from '../table.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'

function refOf (ctx: CommandContext, what: string): string {
  const ref = ctx.positionals[0]
  if (ref === undefined) throw new UsageError(`name the image: meshvirt image ${what} NAME[:TAG]`)
  return ref
}

function holderText (img: ImageView, h: ImageView['holders'][number]): string {
  const name = h.hostname !== '' ? h.hostname : h.hostId.slice(-12)
  const part = h.chunksHeld < img.chunkCount ? ` (fetching ${Math.floor(100 * h.chunksHeld / Math.max(1, img.chunkCount))}%)` : ''
  return `${name}${part}${h.alive ? '' : ' (dead)'}`
}

export const imageImport: Command = {
  path: ['image', 'import'],
  summary: 'add a qcow2 or raw file (in one of this agent\'s --image-dir) to the cluster\'s library: hosts fetch it when a VM needs it',
  usage: 'meshvirt image import FILE --name NAME[:TAG] [--data-dir DIR] [--json]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    name: { type: 'string', valueName: 'NAME[:TAG]', description: 'its name in the library (tag "latest" when omitted); one set of bytes per NAME:TAG' }
  },
  examples: [
    'meshvirt image import /var/lib/meshvirt/images/debian-12.qcow2 --name debian-12',
    'meshvirt image import ./alpine.raw --name alpine:3.20'
  ],
  async run (ctx) {
    const file = ctx.positionals[0]
    if (file === undefined) throw new UsageError('name the file: meshvirt image import FILE --name NAME[:TAG]')
    const ref = ctx.values.name as string | undefined
    if (ref === undefined) throw new UsageError('give the image a name: --name NAME[:TAG]')
    const path = resolve(ctx.cwd ?? process.cwd(), file)
    if (ctx.values.json !== true) ctx.err(`importing ${path} (hashing and copying it into the library)…`)
    const res = await controlClient(ctx).call({ idempotencyKey: randomUUID(), importImage: { path, ref } }, { timeoutMs: 30 * 60_000 })
    const img = imageView(res.image ?? {})
    if (ctx.values.json === true) ctx.out(JSON.stringify(img, null, 2))
    else ctx.out(`image ${img.ref} ${img.imported ? 'imported' : 'already in the library (same bytes)'}: ${img.digest}, ${formatSize(img.sizeBytes)} ${img.format}`)
    return 0
  }
}

export const imageLs: Command = {
  path: ['image', 'ls'],
  summary: 'list the cluster\'s images: name, digest, size, the hosts that hold them, the VMs that use them',
  usage: 'meshvirt image ls [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt image ls', 'meshvirt image ls --json | jq -r ".[].ref"'],
  async run (ctx) {
    const res = await controlClient(ctx).call({ listImages: {} })
    const images = (res.imageList?.images ?? []).map(imageView)
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify(images, null, 2))
      return 0
    }
    ctx.out(renderTable(['NAME', 'DIGEST', 'SIZE', 'FORMAT', 'HOLDERS', 'USED BY'], images.map((i) => [
      i.ref, i.digest.slice(0, 19), formatSize(i.sizeBytes), i.format, i.holders.map((h) => holderText(i, h)).join(', '), String(i.usedBy.length)
    ])))
    return 0
  }
}

export const imageShow: Command = {
  path: ['image', 'show'],
  summary: 'show one image: its digest, size, chunks, every holder (and how much it has), the VMs that use it',
  usage: 'meshvirt image show NAME[:TAG] [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt image show debian-12'],
  async run (ctx) {
    const res = await controlClient(ctx).call({ inspectImage: { ref: refOf(ctx, 'show') } })
    const i = imageView(res.image ?? {})
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify(i, null, 2))
      return 0
    }
    ctx.out([
      `name:    ${i.ref}`,
      `digest:  ${i.digest}`,
      `size:    ${formatSize(i.sizeBytes)} (${i.sizeBytes} bytes), ${i.format}, ${i.chunkCount} chunks`,
      `holders: ${i.holders.length === 0 ? 'none' : i.holders.map((h) => holderText(i, h)).join(', ')}`,
      `used by: ${i.usedBy.length === 0 ? 'no VM' : i.usedBy.join(', ')}`
    ].join('\n'))
    return 0
  }
}

export const imageRm: Command = {
  path: ['image', 'rm'],
  summary: 'remove a name from the library, on every host (hosts keep the bytes while a VM of theirs needs them)',
  usage: 'meshvirt image rm NAME[:TAG] [--data-dir DIR]',
  options: { ...dataDirOption },
  examples: ['meshvirt image rm alpine:3.20'],
  async run (ctx) {
    const ref = refOf(ctx, 'rm')
    const res = await controlClient(ctx).call({ idempotencyKey: randomUUID(), removeImage: { ref } })
    const i = imageView(res.image ?? {})
    ctx.out(`image ${i.ref} removed from the library${i.usedBy.length > 0 ? ` (its bytes stay on the hosts of ${i.usedBy.length} VM(s) that use them)` : ''}`)
    return 0
  }
}
