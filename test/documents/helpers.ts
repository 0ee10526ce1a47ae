/** What the documents tests share: a vault with a tree, multipart bodies, and what is on disk. */
import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Member } from '../helpers/auth.ts'

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

export type Part = { name: string; value: string } | { name: string; filename: string; type?: string; content: Buffer }

/** A multipart/form-data body, built by hand so tests control every byte. */
export function multipart(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----armoire-${randomBytes(8).toString('hex')}`
  const chunks: Buffer[] = []
  for (const part of parts) {
    if ('content' in part) {
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"; filename="${part.filename}"\r\n` +
            `Content-Type: ${part.type ?? 'application/octet-stream'}\r\n\r\n`,
        ),
        part.content,
        Buffer.from('\r\n'),
      )
    } else {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"\r\n\r\n${part.value}\r\n`))
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

export interface Tree {
  armoire: string
  casier: string
  dossier: string
}

/** An armoire › casier › dossier chain created through the API. */
export async function tree(app: FastifyInstance, member: Member, suffix = randomBytes(3).toString('hex')): Promise<Tree> {
  const post = async (url: string, nom: string) => {
    const res = await app.inject({ method: 'POST', url, headers: member.headers, payload: { nom } })
    if (res.statusCode !== 201) throw new Error(`POST ${url}: ${res.statusCode} ${res.body}`)
    return res.json().id as string
  }
  const armoire = await post('/armoires', `Armoire ${suffix}`)
  const casier = await post(`/armoires/${armoire}/casiers`, `Casier ${suffix}`)
  const dossier = await post(`/casiers/${casier}/dossiers`, `Dossier ${suffix}`)
  return { armoire, casier, dossier }
}

export interface UploadOptions {
  filename?: string
  type?: string
  fields?: Record<string, string>
  headers?: Record<string, string>
  query?: string
}

/** POST /dossiers/{id}/fichiers (or /fichiers/{id}/version with `url`) through inject. */
export async function upload(app: FastifyInstance, member: Member, url: string, content: Buffer, opts: UploadOptions = {}) {
  const fields = Object.entries(opts.fields ?? {}).map(([name, value]) => ({ name, value }))
  const body = multipart([...fields, { name: 'fichier', filename: opts.filename ?? 'document.bin', type: opts.type, content }])
  return app.inject({
    method: 'POST',
    url: `${url}${opts.query ? `?${opts.query}` : ''}`,
    headers: { ...member.headers, ...body.headers, ...opts.headers },
    payload: body.payload,
  })
}

export async function uploadFile(app: FastifyInstance, member: Member, folder: string, content: Buffer, opts: UploadOptions = {}) {
  const res = await upload(app, member, `/dossiers/${folder}/fichiers`, content, opts)
  if (res.statusCode !== 201) throw new Error(`upload: ${res.statusCode} ${res.body}`)
  return res.json() as { fichier: { id: string; nom: string }; version: { id: string; version_number: number }; sha256: string }
}

/** Every file under a directory, recursively (blobs and temp files). */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true })
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

/** Counts of the rows a stored file version leaves. */
export async function storedRows(app: FastifyInstance, organisationId: string) {
  const count = async (table: 'fichiers' | 'versions_fichiers' | 'cles_chiffrement') =>
    Number(
      (
        await app.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('organisation_id', '=', organisationId)
          .executeTakeFirstOrThrow()
      ).n,
    )
  const usage = await app.db
    .selectFrom('stockage_organisations')
    .select('stockage_utilise')
    .where('organisation_id', '=', organisationId)
    .executeTakeFirst()
  return {
    fichiers: await count('fichiers'),
    versions: await count('versions_fichiers'),
    cles: await count('cles_chiffrement'),
    stockage: usage?.stockage_utilise ?? 0,
  }
}

/** The journal entries of an organisation, oldest first. */
export async function journal(app: FastifyInstance, organisationId: string) {
  return app.db.selectFrom('journal_activite').selectAll().where('organisation_id', '=', organisationId).orderBy('sequence').execute()
}
