/** Streams of any size for round-trip tests, never held in memory: a keystream as content. */
import { createCipheriv, createHash } from 'node:crypto'
import { request } from 'node:http'

const CHUNK = 1024 * 1024

/** Deterministic pseudo-random bytes (AES-CTR of zeros), `size` bytes in 1 MiB chunks. */
export function* pseudoRandom(size: number, seed = 1): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16))
  const zeros = Buffer.alloc(CHUNK)
  for (let sent = 0; sent < size; sent += CHUNK) yield cipher.update(zeros.subarray(0, Math.min(CHUNK, size - sent)))
}

/** Uploads `size` pseudo-random bytes as a multipart stream; answers the status, body and the content's SHA-256. */
export async function streamUpload(url: string, headers: Record<string, string>, size: number, filename: string, seed = 1) {
  const boundary = 'armoire-grand-flux'
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="fichier"; filename="${filename}"\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const hash = createHash('sha256')
  const target = new URL(url)
  return new Promise<{ status: number; body: string; sha256: string }>((resolve, reject) => {
    const req = request(
      {
        method: 'POST',
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + size + tail.length },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sha256: hash.digest('hex') }))
      },
    )
    req.on('error', reject)
    const chunks = pseudoRandom(size, seed)
    const pump = () => {
      for (;;) {
        const next = chunks.next()
        if (next.done) return void req.end(tail)
        hash.update(next.value)
        if (!req.write(next.value)) return void req.once('drain', pump)
      }
    }
    req.write(head)
    pump()
  })
}

/** Downloads and hashes a response body without keeping it. */
export async function streamDownload(url: string, headers: Record<string, string>) {
  const res = await fetch(url, { headers })
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk)
    size += chunk.length
  }
  return { status: res.status, size, sha256: hash.digest('hex') }
}
