import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { build, listen } from './helpers/build.ts'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const README_URL = 'http://127.0.0.1:3000'
const readme = await readFile(join(ROOT, 'README.md'), 'utf8')

/** The fenced blocks of one README section, by language. */
function blocks(heading: string): Record<string, string> {
  const section = readme.split(`\n## ${heading}\n`)[1]?.split('\n## ')[0] ?? ''
  return Object.fromEntries([...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => [m[1], m[2] ?? '']))
}

t.test('the README’s two set-up commands', async (t) => {
  const start = readme.split('\n## Start\n')[1]?.split('\n## ')[0] ?? ''
  t.same([...start.matchAll(/^```sh\n([\s\S]*?)```$/gm)].map((m) => m[1]), ['npm ci && npm start\n', 'npm ci && npm test\n'])
})

t.test('the README’s first five minutes run against a live server', async (t) => {
  const { sh, ts } = blocks('First five minutes')
  if (!sh || !ts) throw new Error('the section has a sh and a ts block')
  t.ok(sh.includes(README_URL) && ts.includes(README_URL), 'both blocks name the address npm start listens on')
  t.ok(sh.trim().split('\n').length <= 14 && ts.trim().split('\n').length <= 14, 'about ten lines each')

  const app = await build(t)
  const base = await listen(app)
  const dir = await mkdtemp(join(tmpdir(), 'armoire-readme-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  t.test('curl', async (t) => {
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', sh.replaceAll(README_URL, base)], { cwd: dir })
    const copy = await readFile(join(dir, 'copie.txt'), 'utf8')
    t.equal(copy, 'Bonjour, Armoire !\n', 'the download is the upload, byte for byte')
    const versions = JSON.parse(stdout) as { items: { version_number: number; nom: string; sha256: string }[]; next_cursor: null }
    t.match(versions, { items: [{ version_number: 1, nom: 'bonjour.txt', sha256: createHash('sha256').update(copy).digest('hex') }], next_cursor: null })
    const stored = await app.db
      .selectFrom('fichiers as f')
      .innerJoin('dossiers as d', 'd.id', 'f.dossier_id')
      .innerJoin('organisations as o', 'o.id', 'f.organisation_id')
      .select(['f.nom', 'd.nom as dossier', 'o.nom as organisation'])
      .execute()
    t.same(stored, [{ nom: 'bonjour.txt', dossier: '2026', organisation: 'Cabinet Dupont' }])
  })

  t.test('the SDK, type-checked then run', async (t) => {
    // The block imports the package by name; here it is the source, by path, and the test server.
    const file = join(dir, 'premiers-pas.mts')
    await writeFile(file, ts.replaceAll(README_URL, base).replace(`from '@armoire/sdk'`, `from '${join(ROOT, 'openapi/sdk/index.ts')}'`))
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
    const flags = ['--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--allowImportingTsExtensions', '--skipLibCheck', '--types', 'node']
    await run(process.execPath, [tsc, ...flags, '--typeRoots', join(ROOT, 'node_modules/@types'), file], { cwd: ROOT }).catch((error: { stdout?: string }) => {
      throw new Error(`the README's SDK block does not type-check:\n${error.stdout ?? String(error)}`)
    })
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: ROOT })
    const v1 = createHash('sha256').update('Bonjour, Armoire !').digest('hex').slice(0, 12)
    t.same(stdout.trim().split('\n'), ['bonjour.txt 18', 'bonjour.txt Bonjour, Armoire !', `v1 ${v1}`, 'NAME_CONFLICT'])
  })
})
