/** What uploads and downloads need beyond openapi-fetch: a streamed multipart body, and a file name from its header. */

/** A file's content: a Blob (a File, `fs.openAsBlob`) or a stream, sent as it is read. */
export type Content = Blob | ReadableStream<Uint8Array>

export interface MultipartBody {
  body: FormData | ReadableStream<Uint8Array>
  /** Only for a stream: FormData sets its own. */
  contentType?: string
}

/** Browsers' escaping of a name in a form-data header (HTML's multipart/form-data encoding). */
const escapeName = (name: string) => name.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22')

/**
 * The multipart form of an upload: the text fields, then `fichier`. A Blob goes through FormData;
 * a stream is framed by hand, because FormData would read it whole before sending.
 */
export function multipartBody(fields: Record<string, string>, content: Content, filename: string, type?: string): MultipartBody {
  if (content instanceof Blob) {
    const form = new FormData()
    for (const [name, value] of Object.entries(fields)) form.append(name, value)
    form.append('fichier', type && type !== content.type ? new Blob([content], { type }) : content, filename)
    return { body: form }
  }
  const boundary = `armoire-${crypto.randomUUID()}`
  const encoder = new TextEncoder()
  let head = ''
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"\r\n\r\n${value}\r\n`
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="fichier"; filename="${escapeName(filename)}"\r\nContent-Type: ${type ?? 'application/octet-stream'}\r\n\r\n`
  const reader = content.getReader()
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(head))
    },
    async pull(controller) {
      const { done, value } = await reader.read()
      if (!done) return controller.enqueue(value)
      controller.enqueue(encoder.encode(`\r\n--${boundary}--\r\n`))
      controller.close()
    },
    cancel: (reason) => reader.cancel(reason),
  })
  return { body, contentType: `multipart/form-data; boundary=${boundary}` }
}

/** The file name of a `Content-Disposition` header: its UTF-8 `filename*` when present (RFC 6266), else `filename`. */
export function dispositionFilename(header: string | null): string | null {
  if (!header) return null
  const extended = /filename\*\s*=\s*([\w-]+)'[^']*'([^;\s]+)/i.exec(header)
  if (extended?.[2] && extended[1]?.toLowerCase() === 'utf-8') {
    try {
      return decodeURIComponent(extended[2])
    } catch {
      // a malformed escape: fall back to the plain name
    }
  }
  const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:\\.|[^"\\])*)"|([^;\s]+))/i.exec(header)
  if (!plain) return null
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : (plain[2] ?? null)
}
