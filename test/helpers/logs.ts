import { Writable } from 'node:stream'

/** Log lines as objects, to check what reaches the logs and at which level. */
export function logCapture() {
  const lines: Array<Record<string, unknown>> = []
  /** The lines as written: JSON.parse keeps the last of two equal keys, the raw text shows both. */
  const raw: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line)
        lines.push(JSON.parse(line) as Record<string, unknown>)
      }
      done()
    },
  })
  return { lines, raw, stream }
}
