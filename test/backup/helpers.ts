/** What the backup tests share: waiting for jobs, fetching archives, reading them back. */
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import yauzl from 'yauzl'
import type { RestaurationDto, SauvegardeDto } from '../../openapi/backup.ts'
import type { Manifest } from '../../plugins/backup/archive.ts'
import type { Member } from '../helpers/auth.ts'

const run = promisify(execFile)

/** Polls a backup or restore until its job is done (terminee or echec). */
export async function settled<T extends SauvegardeDto | RestaurationDto = SauvegardeDto>(app: FastifyInstance, member: Member, url: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await app.inject({ method: 'GET', url, headers: member.headers })
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`)
    const body = res.json() as T
    if (body.statut === 'terminee' || body.statut === 'echec') return body
    if (Date.now() > deadline) throw new Error(`${url} still ${body.statut} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** POST /sauvegardes, then waits for the job. */
export async function backup(app: FastifyInstance, member: Member, body: Record<string, unknown>): Promise<SauvegardeDto> {
  const res = await app.inject({ method: 'POST', url: '/sauvegardes', headers: member.headers, payload: body })
  if (res.statusCode !== 202) throw new Error(`POST /sauvegardes: ${res.statusCode} ${res.body}`)
  return settled(app, member, `/sauvegardes/${res.json().id}`)
}

export async function archive(app: FastifyInstance, member: Member, id: string): Promise<Buffer> {
  const res = await app.inject({ method: 'GET', url: `/sauvegardes/${id}/archive`, headers: member.headers })
  if (res.statusCode !== 200) throw new Error(`GET archive: ${res.statusCode} ${res.body}`)
  return res.rawPayload
}

/** Runs Debian's `unzip -t` and p7zip's `7z t` on an archive; both must pass. */
export async function externalCheck(dir: string, zip: Buffer): Promise<{ unzip: string; sevenZip: string; listing: string[] }> {
  const path = join(dir, `archive-${Date.now()}.zip`)
  await writeFile(path, zip)
  const unzip = await run('unzip', ['-t', path], { maxBuffer: 64 * 1024 * 1024 })
  const sevenZip = await run('7z', ['t', path], { maxBuffer: 64 * 1024 * 1024 })
  const listing = (await run('unzip', ['-Z1', path], { maxBuffer: 64 * 1024 * 1024 })).stdout.split('\n').filter(Boolean)
  return { unzip: unzip.stdout, sevenZip: sevenZip.stdout, listing }
}

export interface ReadEntry {
  name: string
  method: number
  data: Buffer
}

/** Every entry of a ZIP, decompressed, with its compression method (0 stored, 8 deflated). */
export async function readZip(zip: Buffer): Promise<Map<string, ReadEntry>> {
  const file = await yauzl.fromBufferPromise(zip, { lazyEntries: true })
  const out = new Map<string, ReadEntry>()
  await new Promise<void>((resolve, reject) => {
    file.on('entry', (entry: yauzl.Entry) => {
      if (entry.fileName.endsWith('/')) {
        out.set(entry.fileName, { name: entry.fileName, method: entry.compressionMethod, data: Buffer.alloc(0) })
        return file.readEntry()
      }
      file.openReadStream(entry, (err, stream) => {
        if (err) return reject(err)
        const chunks: Buffer[] = []
        stream.on('data', (c: Buffer) => chunks.push(c))
        stream.on('error', reject)
        stream.on('end', () => {
          out.set(entry.fileName, { name: entry.fileName, method: entry.compressionMethod, data: Buffer.concat(chunks) })
          file.readEntry()
        })
      })
    })
    file.on('end', resolve)
    file.on('error', reject)
    file.readEntry()
  })
  return out
}

export function manifestOf(entries: Map<string, ReadEntry>): Manifest {
  const m = entries.get('manifest.json')
  if (!m) throw new Error('no manifest.json')
  return JSON.parse(m.data.toString('utf8')) as Manifest
}
