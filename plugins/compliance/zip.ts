import type { Readable } from 'node:stream'
import yazl from 'yazl'

/** A ZIP of JSON and text documents, each known whole: small, and streamed out as yazl writes it. */
export function zipOf(files: ReadonlyArray<{ name: string; content: string }>): Readable {
  const zip = new yazl.ZipFile()
  const when = new Date()
  for (const f of files) zip.addBuffer(Buffer.from(f.content, 'utf8'), f.name, { mtime: when })
  zip.end()
  return zip.outputStream as unknown as Readable
}

export const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`
