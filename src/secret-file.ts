import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Reads a development secret kept in a file, creating it once (mode 0600). The content is
 * written and fsynced under a temporary name and published with link(), which fails if the
 * file exists: processes starting together agree on one value and never read half a file.
 */
export async function readOrCreateSecretFile(
  path: string,
  make: () => string,
): Promise<{ value: string; created: boolean }> {
  try {
    return { value: (await readFile(path, 'utf8')).trim(), created: false }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const value = make()
  const tmp = `${path}.${randomBytes(8).toString('hex')}.tmp`
  const file = await open(tmp, 'wx', 0o600)
  try {
    await file.writeFile(`${value}\n`)
    await file.sync()
    await file.close()
    await link(tmp, path)
    const dir = await open(dirname(path), 'r')
    await dir.sync().finally(() => dir.close())
    return { value, created: true }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return { value: (await readFile(path, 'utf8')).trim(), created: false }
  } finally {
    await file.close().catch(() => {})
    await unlink(tmp).catch(() => {})
  }
}
