/** `npm run openapi`: writes the document the app serves to openapi/openapi.json. */
import { writeFile } from 'node:fs/promises'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

/** The document as served, built without touching a database (the pool connects lazily). */
export async function renderOpenapi(): Promise<string> {
  const app = await buildApp({
    config: loadConfig({
      LOG_LEVEL: 'silent',
      MIGRATE_ON_START: 'false',
      JOBS_ENABLED: 'false',
      DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
      JWT_SECRET: 'unused-unused-unused-unused-unused-unused',
      MASTER_KEY: Buffer.alloc(32).toString('base64'),
    }),
  })
  await app.ready()
  const document = `${JSON.stringify(app.swagger(), null, 2)}\n`
  await app.close()
  return document
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = new URL('../openapi/openapi.json', import.meta.url)
  await writeFile(target, await renderOpenapi())
  console.log(`wrote ${target.pathname}`)
}
