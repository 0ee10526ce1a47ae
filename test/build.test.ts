import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { testDatabase, testStorage } from './helpers/build.ts'
import { freePort } from './helpers/net.ts'

const run = promisify(execFile)

// The production artefact, as the Dockerfile runs it: `npm run build`, then plain node on dist/.
t.test('npm run build: compiled JavaScript that starts under plain node and signs in', async (t) => {
  t.setTimeout(600_000)
  await run('npm', ['run', 'build'], { maxBuffer: 16 * 1024 * 1024 })
  const hasher = await readFile('dist/plugins/security/hasher.js', 'utf8')
  t.match(hasher, /hasher-process\./, 'the hashing client is compiled')
  await readFile('dist/plugins/security/hasher-process.js', 'utf8')

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: base,
    DATABASE_URL: await testDatabase(t),
    STORAGE_DIR: await testStorage(t),
    JWT_SECRET: randomBytes(32).toString('base64'),
    MASTER_KEY: randomBytes(32).toString('base64'),
  }
  // No tsx anywhere: not in the arguments, not in NODE_OPTIONS.
  const child = spawn(process.execPath, ['--enable-source-maps', 'dist/src/server.js'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => child.kill('SIGKILL'))
  let output = ''
  child.stdout.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr.on('data', (c: Buffer) => (output += c.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dist/ did not start:\n${output}`)), 90_000)
    child.stdout.on('data', () => output.includes('/docs') && (clearTimeout(timer), resolve()))
    void exited.then((code) => reject(new Error(`dist/ exited with ${code}:\n${output}`)))
  })
  t.equal((await fetch(`${base}/health/ready`)).status, 200)
  const account = { email: 'production@exemple.fr', mot_de_passe: 'Compile-et-demarre-2026' }
  const register = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...account, nom: 'Build', organisation: 'Dist' }),
  })
  t.equal(register.status, 201, `a password hashed by the compiled hashing process: ${output.slice(-3000)}`)
  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(account) })
  t.equal(login.status, 200, 'and verified by it')
  t.ok(((await login.json()) as { access_token?: string }).access_token)
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'a clean stop')
})
