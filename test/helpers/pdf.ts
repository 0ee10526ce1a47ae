import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The text of a PDF as Debian's poppler-utils reads it (`pdftotext -layout`). */
export async function pdfText(pdf: Buffer): Promise<string> {
  const child = run('pdftotext', ['-layout', '-enc', 'UTF-8', '-', '-'], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
  child.child.stdin?.end(pdf)
  return (await child).stdout
}
