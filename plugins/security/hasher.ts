import { type ChildProcess, fork } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { HashOptions } from 'argon2'

export type HashWork = { op: 'hash'; password: string; options: HashOptions } | { op: 'verify'; hash: string; password: string }
export type HashRequest = HashWork & { id: number }
export interface HashReply {
  id: number
  value?: string | boolean
  /** argon2's own refusal (a malformed hash, say); the process goes on. */
  error?: string
}

/** argon2 refused the request itself, as opposed to the hashing process being gone. */
export class HashError extends Error {}

interface Pending {
  resolve: (value: string | boolean) => void
  reject: (error: Error) => void
}

interface HashingProcess {
  child: ChildProcess
  pending: Map<number, Pending>
}

// Beside this module: hasher-process.ts under tsx, hasher-process.js once compiled (`npm run build`).
const SOURCE = import.meta.url.endsWith('.ts')
const ENTRY = fileURLToPath(new URL(`./hasher-process.${SOURCE ? 'ts' : 'js'}`, import.meta.url))

/**
 * Password hashing, in a process of its own, started at the first hash. argon2 runs in
 * libuv's thread pool; in the API's process that pool also does every file read and
 * write, so hashes had to be rationed to the cores there, each next one handed through
 * the event loop to whichever pool thread woke, and the cores sat idle 3–7% of the time
 * under a load of sign-ins (measured). The hashing process's pool has one thread per core,
 * and the requests queue in it: a thread that finishes a hash takes the next at once, and
 * the API's pool is left to files. The process ignores the signals that stop the server
 * (in-flight sign-ins still finish) and ends with the server's channel; if it dies, the
 * requests it held fail and the next hash starts another.
 */
class Hasher {
  #worker: HashingProcess | undefined
  #next = 0

  /** The hashing process's pid, once started. */
  get pid(): number | undefined {
    return this.#worker?.child.pid
  }

  #start(): HashingProcess {
    const child = fork(ENTRY, [], {
      // Only the loader the sources need, not the parent's flags (a test runner's, --watch).
      execArgv: SOURCE ? ['--import', 'tsx'] : [],
      env: { ...process.env, UV_THREADPOOL_SIZE: String(availableParallelism()) },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const worker: HashingProcess = { child, pending: new Map() }
    const settle = (reply: HashReply) => {
      const pending = worker.pending.get(reply.id)
      if (!pending) return
      worker.pending.delete(reply.id)
      if (worker.pending.size === 0) child.channel?.unref()
      if (reply.error !== undefined) pending.reject(new HashError(reply.error))
      else pending.resolve(reply.value as string | boolean)
    }
    const end = (reason: string) => {
      if (this.#worker === worker) this.#worker = undefined
      const error = new Error(`the hashing process ended (${reason})`)
      for (const pending of worker.pending.values()) pending.reject(error)
      worker.pending.clear()
    }
    child.on('message', settle)
    child.on('exit', (code, signal) => end(signal ?? `code ${code}`))
    child.on('error', (error) => {
      end(error.message)
      child.kill()
    })
    // An idle hasher never keeps the server's process alive.
    child.unref()
    child.channel?.unref()
    this.#worker = worker
    return worker
  }

  /** A new hash (string), or whether a password matches a hash (boolean). */
  run(work: HashWork): Promise<string | boolean> {
    const worker = this.#worker ?? this.#start()
    const id = ++this.#next
    return new Promise((resolve, reject) => {
      // While a hash is awaited, the channel keeps the process alive (a script awaiting one would exit otherwise).
      if (worker.pending.size === 0) worker.child.channel?.ref()
      worker.pending.set(id, { resolve, reject })
      const request: HashRequest = { ...work, id }
      worker.child.send(request, (error) => {
        if (error && worker.pending.delete(id)) reject(error)
      })
    })
  }
}

export const hasher = new Hasher()
