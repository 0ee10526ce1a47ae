/**
 * The hashing process (see `hasher.ts`): answers argon2 requests from its parent, each as it
 * comes. Its libuv pool has one thread per core, where the requests queue. The signals that
 * stop the server reach it too (same process group) and are ignored: the server finishes its
 * in-flight sign-ins first, and this process ends with the server's channel.
 */
import argon2 from 'argon2'
import type { HashReply, HashRequest } from './hasher.ts'

function answer(reply: HashReply): void {
  process.send?.(reply)
}

process.on('message', (request: HashRequest) => {
  const work = request.op === 'hash' ? argon2.hash(request.password, request.options) : argon2.verify(request.hash, request.password)
  work.then(
    (value) => answer({ id: request.id, value }),
    (error: unknown) => answer({ id: request.id, error: error instanceof Error ? error.message : String(error) }),
  )
})
process.on('disconnect', () => process.exit(0))
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => {})
