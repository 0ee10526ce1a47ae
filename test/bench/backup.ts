/**
 * `npm run bench:backup`, in one run: an organisation of BENCH_BACKUP_FILES files (default
 * 5 000) of random content in a mix of sizes totalling at least 1 GiB, uploaded through
 * HTTP; then, timed on the same data:
 *  (a) the raw floor, in this process: read and decrypt every version, write a stored ZIP,
 *      encrypted, into a blob store on the same disk;
 *  (b) POST /sauvegardes {type: "systeme"} until `terminee`;
 *  (c) the restore of that backup into an empty armoire, until `terminee`.
 * Prints MB/s, the ratios backup/raw and restore/raw (target ≥ 0.5 each) and the server's
 * peak RSS growth during (b) and (c) (target < 150 MB). The server runs in a child process
 * so its memory is its own. Knobs: BENCH_BACKUP_FILES, BENCH_DATABASE_URL.
 */
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { readFile } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import yazl from 'yazl'
import { keyAad } from '../../plugins/documents/content.ts'
import { localBlobRoot } from '../../src/blobs.ts'
import { createLocalBlobStore } from '../../src/blob/local.ts'
import { createLocalKeySource } from '../../src/crypto/keys.ts'
import { createDecryptStream, createEncryptStream, randomDataKey } from '../../src/crypto/segmented.ts'
import { createDb } from '../../src/db.ts'
import { multipart } from '../documents/helpers.ts'
import { describeMachine, fmt, runBench, startBenchDatabase, table } from './lib.ts'

const FILES = Number(process.env.BENCH_BACKUP_FILES ?? 5_000)
const MB = 1024 * 1024
const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000)

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
}

/** A realistic mix: many small documents, some scans, a few large files; ≥ 1 GiB for 5 000 files. */
function sizeOf(i: number): number {
  if (i % 100 === 0) return 12 * MB + (i % 7) * 65_537
  if (i % 10 === 0) return MB + (i % 13) * 10_007
  return 16 * 1024 + ((i * 7919) % (96 * 1024))
}
const TYPES = ['application/pdf', 'image/jpeg', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'application/octet-stream', 'text/plain']

await runBench(async (cleanup) => {
  const database = await startBenchDatabase(cleanup)
  const masterKey = randomBytes(32)
  const child = fork(new URL('./backup-server.ts', import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_APP_DATABASE_URL: database.url, BENCH_MASTER_KEY: masterKey.toString('base64') },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  cleanup.defer('stop the server process', () => new Promise<void>((resolve) => (child.connected ? (child.once('exit', () => resolve()), child.disconnect()) : resolve())))
  const { url: base, storage } = await new Promise<{ url: string; storage: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; storage: string }))
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
  })
  const pid = child.pid as number
  console.log('# bench:backup')
  console.log(`# ${describeMachine()}`)
  // Other engineers' tests share the machine: the figures mean little without it.
  const load = () => `load average ${loadavg().map((n) => fmt(n, 2)).join(', ')}`
  console.log(`# ${load()} at the start`)
  console.log(`# ${database.description}; server pid ${pid}, blobs under ${storage}`)

  const json = async (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => {
    const res = await fetch(`${base}${path}`, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
    if (res.status >= 300) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`)
    return (await res.json()) as Record<string, unknown>
  }
  const credentials = { email: 'banc-sauvegardes@exemple.fr', mot_de_passe: 'Mesure-sauvegarde-2026-longue' }
  const account = await json('/auth/register', { method: 'POST', body: JSON.stringify({ ...credentials, nom: 'Banc', organisation: 'Banc sauvegardes' }) })
  const auth = { authorization: `Bearer ${account.access_token}` }
  const organisationId = (account.utilisateur as { organisation_id: string }).organisation_id
  const post = async (path: string, body: Record<string, unknown>) => json(path, { method: 'POST', headers: auth, body: JSON.stringify(body) })
  const armoire = (await post('/armoires', { nom: 'Archives' })).id as string
  const casier = (await post(`/armoires/${armoire}/casiers`, { nom: 'Années' })).id as string
  const folders: string[] = []
  for (let i = 0; i < 25; i++) folders.push((await post(`/casiers/${casier}/dossiers`, { nom: `Dossier ${i}` })).id as string)

  // Access tokens are short-lived and the bench is not: a fresh one before each timed step,
  // and during a seeding that a loaded machine makes longer than a token lives.
  const signIn = async () => {
    const session = await json('/auth/login', { method: 'POST', body: JSON.stringify(credentials) })
    auth.authorization = `Bearer ${session.access_token}`
  }
  // Seeding, 8 uploads at a time
  const seedStart = performance.now()
  let total = 0
  let next = 0
  let signedIn = performance.now()
  const worker = async () => {
    for (let i = next++; i < FILES; i = next++) {
      if (performance.now() - signedIn > 5 * 60_000) {
        signedIn = performance.now()
        await signIn()
      }
      const content = randomBytes(sizeOf(i))
      total += content.length
      const type = TYPES[i % TYPES.length]!
      const body = multipart([{ name: 'fichier', filename: `piece-${i}.${type === 'text/plain' ? 'txt' : 'bin'}`, type, content }])
      const res = await fetch(`${base}/dossiers/${folders[i % folders.length]}/fichiers`, { method: 'POST', headers: { ...auth, ...body.headers }, body: body.payload })
      if (res.status !== 201) throw new Error(`upload ${i}: ${res.status} ${await res.text()}`)
      await res.arrayBuffer()
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  console.log(`# seeded ${FILES} files, ${fmt(total / MB)} MB, in ${fmt((performance.now() - seedStart) / 1000, 1)} s`)

  // (a) Raw floor: every version read and decrypted, a stored ZIP written encrypted, in this process
  const db = createDb({ url: database.url, poolMax: 2 })
  cleanup.defer('close the bench’s database handle', () => db.destroy())
  const keys = createLocalKeySource(new Map([[1, masterKey]]))
  const store = createLocalBlobStore(localBlobRoot({ STORAGE_DIR: storage }))
  const versions = await db
    .selectFrom('versions_fichiers as v')
    .innerJoin('cles_chiffrement as k', 'k.id', 'v.cle_id')
    .select(['v.id', 'v.blob', 'v.taille', 'v.nom', 'k.id as cle_id', 'k.cle_enveloppee', 'k.version_cle_maitre'])
    .where('v.organisation_id', '=', organisationId)
    .execute()
  const rawStart = performance.now()
  const zip = new yazl.ZipFile()
  const archiveKey = randomDataKey()
  const writer = store.createWriter()
  const written = pipeline(zip.outputStream as Readable, createEncryptStream({ key: archiveKey, aad: 'bench' }), writer.stream)
  for (const v of versions) {
    const key = await keys.unwrap(v.cle_enveloppee!, v.version_cle_maitre, keyAad(v.cle_id))
    const plain = createDecryptStream({ key, aad: v.id })
    pipeline(await store.read(v.blob), plain).catch(() => {})
    const done = new Promise((resolve, reject) => plain.once('end', resolve).once('error', reject))
    zip.addReadStream(plain, `raw/${v.id}-${v.nom}`, { size: v.taille, compress: false })
    await done
  }
  zip.end()
  await written
  await writer.commit()
  const rawMs = performance.now() - rawStart
  await store.delete(writer.name)
  console.log(`# (a) raw floor: ${fmt(rawMs / 1000, 1)} s, ${fmt(mbps(total, rawMs), 1)} MB/s`)
  await signIn()

  // (b) and (c) through the API, the server's memory sampled every 50 ms
  const baseline = await rssOf(pid)
  let peak = baseline
  const sampler = setInterval(() => void rssOf(pid).then((r) => (peak = Math.max(peak, r)), () => {}), 50)
  const settle = async (path: string) => {
    for (;;) {
      const row = await json(path, { headers: auth })
      if (row.statut === 'terminee') return row
      if (row.statut === 'echec') throw new Error(`${path}: ${JSON.stringify(row.erreur)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const backupStart = performance.now()
  const created = await post('/sauvegardes', { type: 'systeme' })
  const backup = await settle(`/sauvegardes/${created.id}`)
  const backupMs = performance.now() - backupStart
  const backupPeak = peak
  console.log(`# (b) backup: ${fmt(backupMs / 1000, 1)} s, ${fmt(mbps(total, backupMs), 1)} MB/s`)
  await signIn()

  const empty = (await post('/armoires', { nom: 'Restauration du banc' })).id as string
  const restoreStart = performance.now()
  const restoration = await post(`/sauvegardes/${created.id}/restaurer`, { cible_id: empty })
  const restored = await settle(`/restaurations/${restoration.id}`)
  const restoreMs = performance.now() - restoreStart
  clearInterval(sampler)
  const rapport = restored.rapport as { crees: number; echecs: number }
  if (rapport.echecs > 0) throw new Error(`restore: ${rapport.echecs} failures`)

  const raw = mbps(total, rawMs)
  const viaBackup = mbps(total, backupMs)
  const viaRestore = mbps(total, restoreMs)
  console.log(
    table(
      ['step', 'seconds', 'MB/s', 'ratio to raw'],
      [
        ['(a) raw floor: decrypt + stored ZIP + encrypt', fmt(rawMs / 1000, 1), fmt(raw, 1), '1.00'],
        ['(b) POST /sauvegardes systeme → terminee', fmt(backupMs / 1000, 1), fmt(viaBackup, 1), fmt(viaBackup / raw, 2)],
        ['(c) restore into an empty armoire → terminee', fmt(restoreMs / 1000, 1), fmt(viaRestore, 1), fmt(viaRestore / raw, 2)],
      ],
    ),
  )
  console.log(`# archive ${fmt(Number(backup.taille) / MB)} MB for ${fmt(total / MB)} MB of content; restore created ${rapport.crees} elements`)
  console.log(`# server RSS: ${fmt(baseline / MB)} MB before, peak ${fmt(backupPeak / MB)} MB during the backup, ${fmt(peak / MB)} MB overall; growth ${fmt((peak - baseline) / MB)} MB (target < 150)`)
  console.log(`# ${load()} at the end`)
  const ok = viaBackup / raw >= 0.5 && viaRestore / raw >= 0.5 && peak - baseline < 150 * MB
  console.log(`# ${ok ? 'targets met' : 'TARGETS MISSED'}: backup/raw ${fmt(viaBackup / raw, 2)}, restore/raw ${fmt(viaRestore / raw, 2)} (≥ 0.5), RSS growth ${fmt((peak - baseline) / MB)} MB (< 150)`)
})
