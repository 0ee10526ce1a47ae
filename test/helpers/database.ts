import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** Set by test/run.ts: a maintenance connection URL and the migrated template's name. */
export function testEnv(): { adminUrl: string; template: string; runId: string } {
  const adminUrl = process.env.TEST_DATABASE_URL
  const template = process.env.TEST_TEMPLATE_DB
  const runId = process.env.TEST_RUN_ID
  if (!adminUrl || !template || !runId) throw new Error('run the tests with `npm test` (test/run.ts prepares the database)')
  return { adminUrl, template, runId }
}

export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

export async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

const SOURCE_IN_USE = '55006'

/** Creates a database, from the migrated template unless `empty`; answers its name. */
export async function createDatabase(opts: { empty?: boolean } = {}): Promise<{ name: string; url: string }> {
  const { adminUrl, template, runId } = testEnv()
  const name = `armoire_t_${runId}_${randomBytes(5).toString('hex')}`
  await withAdmin(adminUrl, async (client) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(opts.empty ? `create database "${name}"` : `create database "${name}" template "${template}"`)
        return
      } catch (error) {
        // Cloning needs the template idle for an instant; parallel test files may collide.
        if ((error as { code?: string }).code !== SOURCE_IN_USE || attempt > 50) throw error
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100))
      }
    }
  })
  return { name, url: databaseUrl(adminUrl, name) }
}

export async function dropDatabase(name: string): Promise<void> {
  const { adminUrl } = testEnv()
  await withAdmin(adminUrl, (client) => client.query(`drop database if exists "${name}" with (force)`))
}
