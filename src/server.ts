import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.ts'
import { loadConfig, publicUrl } from './config.ts'
import { withDevDefaults } from './dev-defaults.ts'

const base = loadConfig()
const runtime = await withDevDefaults(base, () => {})
const app = await buildApp({ config: runtime.config }).catch(async (error) => {
  await runtime.embedded?.stop()
  throw error
})

if (runtime.warnings.length > 0) {
  app.log.warn(
    { defaults: runtime.warnings },
    '⚠ DEVELOPMENT DEFAULTS IN USE — NOT FOR PRODUCTION: set DATABASE_URL, JWT_SECRET and MASTER_KEY',
  )
}

closeWithGrace({ delay: runtime.config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down: finishing in-flight requests')
  await app.close()
  await runtime.embedded?.stop()
})

await app.listen({ host: runtime.config.HOST, port: runtime.config.PORT })
app.log.info(`Armoire is listening — API documentation: ${publicUrl(runtime.config)}/docs`)
