import { type ChildProcess, spawn } from 'node:child_process'
import { TEST_JWT_SECRET, type TestContext } from './build.ts'
import { freePort } from './net.ts'

/** The real server (`src/server.ts`) in a process of its own, so that it can be killed like one. */
export interface Instance {
  url: string
  port: number
  child: ChildProcess
  /** What it has printed so far, stdout and stderr interleaved. */
  output(): string
  /** Resolves with the exit code (or null when a signal ended it). */
  exited: Promise<number | null>
  /** `kill -9`, resolved once the process is gone. */
  kill(): Promise<void>
}

/**
 * Starts the server with `env` (DATABASE_URL, STORAGE_DIR…; NODE_ENV=test, the test JWT secret
 * and a free port unless given) and waits until it listens. Killed at the test's end.
 */
export async function startInstance(t: TestContext, env: Record<string, string>, timeoutMs = 90_000): Promise<Instance> {
  const port = env.PORT ? Number(env.PORT) : await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      LOG_LEVEL: 'info',
      NODE_ENV: 'test',
      JWT_SECRET: TEST_JWT_SECRET,
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${output}`)), timeoutMs)
    const listen = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('/docs')) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', listen)
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${output}`))
    })
  })
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  await ready
  return { url: `http://127.0.0.1:${port}`, port, child, output: () => output, exited, kill }
}
