import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { type BuildOptions, buildApp } from '../../src/app.ts'
import { type Config, loadConfig } from '../../src/config.ts'
import { createDatabase, dropDatabase } from './database.ts'

/** The part of tap's Test the helpers use. */
export interface TestContext {
  teardown(fn: () => unknown): void
}

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789'

/** A database of the test's own, cloned from the migrated template, dropped at teardown. */
export async function testDatabase(t: TestContext, opts: { empty?: boolean } = {}): Promise<string> {
  const { name, url } = await createDatabase(opts)
  t.teardown(() => dropDatabase(name))
  return url
}

export async function testStorage(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'armoire-storage-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Production configuration, with what a test must own: its database, storage and secrets. */
export async function testConfig(t: TestContext, env: Record<string, string> = {}): Promise<Config> {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    DATABASE_URL: env.DATABASE_URL ?? (await testDatabase(t)),
    STORAGE_DIR: env.STORAGE_DIR ?? (await testStorage(t)),
    ...env,
  })
}

/** Builds the real app, as production does, on a database of its own; closed at teardown. */
export async function build(
  t: TestContext,
  env: Record<string, string> = {},
  options: Omit<BuildOptions, 'config'> = {},
): Promise<FastifyInstance> {
  const app = await buildApp({ config: await testConfig(t, env), ...options })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Listens on a free port of the loopback and answers the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no TCP address')
  return `http://127.0.0.1:${address.port}`
}
