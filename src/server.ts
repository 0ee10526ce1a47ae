import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.ts'
import { type Config, loadConfig, publicUrl } from './config.ts'
import { withDevDefaults } from './dev-defaults.ts'

/**
 * A start-up that cannot go on ends here: one line on stderr naming the cause and the setting
 * that fixes it, exit code 1, nothing left running (the caller stopped what it had started).
 */
function cannotStart(error: unknown): never {
  process.stderr.write(`armoire: cannot start: ${error instanceof Error ? error.message : String(error)}\n`)
  // A cause nobody foresaw keeps its stack: it is a bug to report, not a setting to change.
  if (!(error instanceof Error && KNOWN_CAUSES.has(error.name))) console.error(error)
  process.exit(1)
}
const KNOWN_CAUSES = new Set(['ConfigError', 'EmbeddedPostgresError', 'PortInUseError'])

class PortInUseError extends Error {
  override name = 'PortInUseError'
}

let base: Config
try {
  base = loadConfig()
} catch (error) {
  cannotStart(error)
}
const runtime = await withDevDefaults(base, () => {}).catch(cannotStart)
const app = await buildApp({ config: runtime.config }).catch(async (error: unknown) => {
  await runtime.embedded?.stop()
  cannotStart(error)
})

if (runtime.warnings.length > 0) {
  app.log.warn(
    { defaults: runtime.warnings },
    '⚠ DEVELOPMENT DEFAULTS IN USE — NOT FOR PRODUCTION: set DATABASE_URL, JWT_SECRET and MASTER_KEY',
  )
}

// The stop signals are handled here: `npm start` relays the terminal's Ctrl-C to the server,
// which got it from the terminal too, and close-with-grace would take the copy, a few
// milliseconds later, for a second Ctrl-C and exit at once, leaving the stop half done.
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
const RELAYED_WITHIN_MS = 1_000
const grace = closeWithGrace({ delay: runtime.config.SHUTDOWN_TIMEOUT_MS, skip: [...STOP_SIGNALS] }, async ({ err }) => {
  if (err) app.log.error({ err }, 'shutting down after an error')
  // The server's work first (requests, jobs, pools), then the database it runs on.
  await app.close()
  await runtime.embedded?.stop()
})
let stopping: { signal: NodeJS.Signals; at: number } | undefined
for (const signal of STOP_SIGNALS) {
  process.on(signal, () => {
    if (!stopping) {
      stopping = { signal, at: Date.now() }
      app.log.info({ signal }, 'shutting down: finishing in-flight requests')
      void grace.close()
    } else if (Date.now() - stopping.at > RELAYED_WITHIN_MS) {
      app.log.warn({ signal }, 'second stop signal: exiting now')
      // PostgreSQL is stopped by its exit hook (src/embedded-postgres.ts).
      process.exit(1)
    }
  })
}

await app.listen({ host: runtime.config.HOST, port: runtime.config.PORT }).catch(async (error: NodeJS.ErrnoException) => {
  await app.close()
  await runtime.embedded?.stop()
  cannotStart(
    error.code === 'EADDRINUSE' ? new PortInUseError(`port ${runtime.config.PORT} of ${runtime.config.HOST} is already in use: set PORT to a free port`) : error,
  )
})
app.log.info(`Armoire is listening — API documentation: ${publicUrl(runtime.config)}/docs`)
