/**
 * `npm run bench:files`, in one run:
 * 1. raw segmented encrypt+write and read+decrypt of 1 GiB on this disk, then upload and
 *    download of the same size through HTTP: MB/s and ratios (target ≥ 0.6), and the server's
 *    peak RSS growth during the transfers (target < 100 MB) — the server runs in a child
 *    process so its memory is its own;
 * 2. 50 concurrent 10 MB uploads, all stored and read back intact;
 * 3. a folder of 10 000 files: p95 of one page (target < 20 ms).
 * Knobs: BENCH_FILE_BYTES (default 1 GiB), BENCH_DATABASE_URL.
 */
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createDecryptStream, createEncryptStream, randomDataKey } from '../../src/crypto/segmented.ts'
import { pseudoRandom, streamDownload, streamUpload } from '../documents/large-stream.ts'
import { describeMachine, fmt, median, runBench, startBenchDatabase, table, tempDir } from './lib.ts'

const SIZE = Number(process.env.BENCH_FILE_BYTES ?? 1024 ** 3)
const MB = 1024 * 1024
const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000)

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
}

/** Samples a process's resident memory every 50 ms while `work` runs; answers the peak. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = await rssOf(pid)
  const timer = setInterval(() => void rssOf(pid).then((r) => (peak = Math.max(peak, r))), 50)
  try {
    return { result: await work(), peak }
  } finally {
    clearInterval(timer)
  }
}

const sink = () => new Writable({ write: (_chunk, _enc, done) => done() })

await runBench(async (cleanup) => {
  const database = await startBenchDatabase(cleanup)
  const child = fork(new URL('./files-server.ts', import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_APP_DATABASE_URL: database.url },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  cleanup.defer('stop the server process', () => new Promise<void>((resolve) => (child.connected ? (child.once('exit', () => resolve()), child.disconnect()) : resolve())))
  const { url: base, storage } = await new Promise<{ url: string; storage: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; storage: string }))
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
  })
  const pid = child.pid as number
  console.log('# bench:files')
  console.log(`# ${describeMachine()}`)
  console.log(`# ${database.description}; server pid ${pid}, blobs under ${storage}`)

  const json = async (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => {
    const res = await fetch(`${base}${path}`, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
    if (res.status >= 300) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`)
    return (await res.json()) as Record<string, unknown>
  }
  const account = await json('/auth/register', {
    method: 'POST',
    body: JSON.stringify({ email: 'banc-fichiers@exemple.fr', mot_de_passe: 'Mesure-debit-2026-longue', nom: 'Banc', organisation: 'Banc fichiers' }),
  })
  const auth = { authorization: `Bearer ${account.access_token}` }
  const post = async (path: string, nom: string) => (await json(path, { method: 'POST', headers: auth, body: JSON.stringify({ nom }) })).id as string
  const armoire = await post('/armoires', 'Banc')
  const casier = await post(`/armoires/${armoire}/casiers`, 'Banc')
  const folder = async (nom: string) => post(`/casiers/${casier}/dossiers`, nom)

  // 1. Raw crypto on this disk vs the same bytes through HTTP
  const scratch = await tempDir(cleanup, 'armoire-bench-raw-')
  const rawFile = join(scratch, 'raw.blob')
  const key = randomDataKey()
  const aad = 'bench'
  let started = performance.now()
  await pipeline(Readable.from(pseudoRandom(SIZE)), createEncryptStream({ key, aad }), createWriteStream(rawFile))
  const fd = await open(rawFile, 'r+')
  await fd.sync()
  await fd.close()
  const rawWriteMs = performance.now() - started
  started = performance.now()
  await pipeline(createReadStream(rawFile), createDecryptStream({ key, aad }), sink())
  const rawReadMs = performance.now() - started
  await rm(rawFile)

  const big = await folder('Grand fichier')
  const baseline = await rssOf(pid)
  started = performance.now()
  const up = await peakRss(pid, () => streamUpload(`${base}/dossiers/${big}/fichiers`, auth, SIZE, 'grand.bin'))
  const uploadMs = performance.now() - started
  if (up.result.status !== 201) throw new Error(`upload: ${up.result.status} ${up.result.body}`)
  const receipt = JSON.parse(up.result.body) as { fichier: { id: string }; sha256: string }
  started = performance.now()
  const down = await peakRss(pid, () => streamDownload(`${base}/fichiers/${receipt.fichier.id}/contenu`, auth))
  const downloadMs = performance.now() - started
  const intact = down.result.sha256 === up.result.sha256 && receipt.sha256 === up.result.sha256 && down.result.size === SIZE
  const growth = Math.max(up.peak, down.peak) - baseline
  const upRatio = mbps(SIZE, uploadMs) / mbps(SIZE, rawWriteMs)
  const downRatio = mbps(SIZE, downloadMs) / mbps(SIZE, rawReadMs)
  console.log(`\n## ${fmt(SIZE / MB)} MiB, raw segmented crypto on disk vs through HTTP (server in its own process)`)
  console.log(
    table(
      ['step', 'MB/s', 'ratio HTTP/raw'],
      [
        ['raw encrypt + write + fsync', fmt(mbps(SIZE, rawWriteMs)), ''],
        ['HTTP upload', fmt(mbps(SIZE, uploadMs)), `${fmt(upRatio, 2)} (target ≥ 0.6)`],
        ['raw read + decrypt', fmt(mbps(SIZE, rawReadMs)), ''],
        ['HTTP download', fmt(mbps(SIZE, downloadMs)), `${fmt(downRatio, 2)} (target ≥ 0.6)`],
      ],
    ),
  )
  console.log(`round trip byte for byte: ${intact ? 'yes' : 'NO'} (sha256 ${up.result.sha256.slice(0, 16)}…)`)
  console.log(`server RSS: ${fmt(baseline / MB)} MB before, peak ${fmt(Math.max(up.peak, down.peak) / MB)} MB → growth ${fmt(growth / MB)} MB (target < 100 MB)`)

  // 2. 50 concurrent 10 MB uploads, read back
  const many = await folder('Cinquante')
  const ten = 10 * 1000 * 1000
  started = performance.now()
  const uploads = await Promise.all(Array.from({ length: 50 }, (_, i) => streamUpload(`${base}/dossiers/${many}/fichiers`, auth, ten, `f-${i}.bin`, i + 2)))
  const concurrentMs = performance.now() - started
  let good = 0
  for (const u of uploads) {
    if (u.status !== 201) continue
    const r = JSON.parse(u.body) as { fichier: { id: string } }
    const back = await streamDownload(`${base}/fichiers/${r.fichier.id}/contenu`, auth)
    if (back.sha256 === u.sha256 && back.size === ten) good++
  }
  console.log(`\n## 50 concurrent 10 MB uploads: ${good}/50 stored and read back intact, ${fmt(concurrentMs)} ms (${fmt((50 * ten) / MB / (concurrentMs / 1000))} MB/s aggregate)`)

  // 3. A folder of 10 000 files
  const crowded = await folder('Dix mille')
  const content = randomBytes(64)
  const files = 10_000
  started = performance.now()
  let next = 0
  const worker = async () => {
    while (next < files) {
      const i = next++
      const form = new FormData()
      form.append('fichier', new Blob([content]), `document-${String(i).padStart(5, '0')}.txt`)
      const res = await fetch(`${base}/dossiers/${crowded}/fichiers`, { method: 'POST', headers: auth, body: form })
      if (res.status !== 201) throw new Error(`file ${i}: ${res.status} ${await res.text()}`)
      await res.arrayBuffer()
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  const fillMs = performance.now() - started
  const times: number[] = []
  let cursor: string | null = null
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now()
    const page = (await json(`/dossiers/${crowded}/fichiers?limit=50${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth })) as { next_cursor: string | null; items: unknown[] }
    times.push(performance.now() - t0)
    cursor = page.next_cursor
  }
  const sorted = [...times].sort((a, b) => a - b)
  const p95 = sorted[Math.floor(sorted.length * 0.95)] ?? 0
  console.log(`\n## folder of ${fmt(files)} files (filled in ${fmt(fillMs / 1000, 1)} s): one page of 50, 300 requests walking the cursor: p50 ${fmt(median(times), 1)} ms, p95 ${fmt(p95, 1)} ms (target < 20 ms)`)

  const pass = intact && upRatio >= 0.6 && downRatio >= 0.6 && growth < 100 * MB && good === 50 && p95 < 20
  console.log(`\n${pass ? 'PASS' : 'FAIL'}`)
  if (!pass) process.exitCode = 1
})
