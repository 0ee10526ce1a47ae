import { execFile } from 'node:child_process'
import { randomBytes, webcrypto } from 'node:crypto'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import {
  KeyUnwrapError,
  createLocalKeySource,
  deriveKey,
  loadOrCreateDevMasterKey,
  parseMasterKeys,
  rewrap,
} from '../../src/crypto/keys.ts'
import { randomDataKey } from '../../src/crypto/segmented.ts'

const run = promisify(execFile)
const VERSION_ID = '5d0c0f7e-7f3b-4a8e-9a0e-0d5b8f1c2a34'

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => null,
    (error: unknown) => error,
  )

t.test('wrap and unwrap', async (t) => {
  const v1 = randomBytes(32)
  const v2 = randomBytes(32)
  const source = createLocalKeySource(new Map([[1, v1], [2, v2]]))
  t.equal(source.currentVersion, 2, 'newest version wraps')

  const dataKey = randomDataKey()
  const { wrapped, masterKeyVersion } = await source.wrap(dataKey, VERSION_ID)
  t.equal(masterKeyVersion, 2)
  t.equal(wrapped.length, 12 + 32 + 16, 'nonce ‖ ciphertext ‖ tag')
  t.notOk(wrapped.includes(dataKey), 'the data key does not appear in clear')
  t.same(await source.unwrap(wrapped, 2, VERSION_ID), dataKey)
  const again = await source.wrap(dataKey, VERSION_ID)
  t.not(again.wrapped.toString('hex'), wrapped.toString('hex'), 'fresh nonce per wrap')

  const unknown = await failure(source.unwrap(wrapped, 3, VERSION_ID))
  t.type(unknown, KeyUnwrapError)
  t.match((unknown as Error).message, /unknown master key version 3/)
  t.type(await failure(source.unwrap(wrapped, 1, VERSION_ID)), KeyUnwrapError, 'wrong version')
  const impostor = createLocalKeySource(new Map([[2, randomBytes(32)]]))
  t.type(await failure(impostor.unwrap(wrapped, 2, VERSION_ID)), KeyUnwrapError, 'wrong key')
  t.type(await failure(source.unwrap(wrapped, 2, 'another-version')), KeyUnwrapError, 'wrong aad')
  const flipped = Buffer.from(wrapped)
  flipped[20]! ^= 1
  t.type(await failure(source.unwrap(flipped, 2, VERSION_ID)), KeyUnwrapError, 'flipped bit')
  t.type(await failure(source.unwrap(wrapped.subarray(0, 20), 2, VERSION_ID)), KeyUnwrapError, 'truncated')
})

t.test('rotation re-wraps under the newest version', async (t) => {
  const v1 = randomBytes(32)
  const old = createLocalKeySource(new Map([[1, v1]]))
  const dataKey = randomDataKey()
  const before = await old.wrap(dataKey, VERSION_ID)
  t.equal(before.masterKeyVersion, 1)

  const rotated = createLocalKeySource(new Map([[1, v1], [2, randomBytes(32)]]))
  t.same(await rotated.unwrap(before.wrapped, 1, VERSION_ID), dataKey, 'old wraps still open')
  const after = await rewrap(rotated, before, VERSION_ID)
  t.equal(after.masterKeyVersion, 2)
  t.same(await rotated.unwrap(after.wrapped, 2, VERSION_ID), dataKey)
  t.equal(await rewrap(rotated, after, VERSION_ID), after, 'already current: unchanged')
})

t.test('local key source refuses bad keys', async (t) => {
  t.throws(() => createLocalKeySource(new Map()), /at least one/)
  t.throws(() => createLocalKeySource(new Map([[1, randomBytes(16)]])), /32 bytes/)
  t.throws(() => createLocalKeySource(new Map([[0, randomBytes(32)]])), /version/)
})

t.test('parseMasterKeys', async (t) => {
  const k1 = randomBytes(32)
  const k2 = randomBytes(32)
  const b64 = (b: Buffer) => b.toString('base64')

  t.equal(parseMasterKeys({}), null, 'nothing configured')
  t.equal(parseMasterKeys({ MASTER_KEY: '', MASTER_KEYS: ' ' }), null, 'blank is nothing')
  t.same(parseMasterKeys({ MASTER_KEY: b64(k1) }), new Map([[1, k1]]))
  t.same(parseMasterKeys({ MASTER_KEYS: `1:${b64(k1)}, 2:${b64(k2)}` }), new Map([[1, k1], [2, k2]]))
  t.same(
    parseMasterKeys({ MASTER_KEY: b64(k1), MASTER_KEYS: `7:${b64(k2)}` }),
    new Map([[7, k2]]),
    'MASTER_KEYS takes precedence',
  )

  const secret = b64(randomBytes(31))
  t.throws(() => parseMasterKeys({ MASTER_KEY: secret }), /MASTER_KEY must be the base64 encoding of exactly 32 bytes/)
  try {
    parseMasterKeys({ MASTER_KEY: secret })
  } catch (error) {
    t.notMatch((error as Error).message, secret, 'the value stays out of the message')
  }
  t.throws(() => parseMasterKeys({ MASTER_KEY: b64(randomBytes(33)) }), /exactly 32 bytes/)
  t.throws(() => parseMasterKeys({ MASTER_KEY: `${b64(k1).slice(0, -2)}!!` }), /base64/)
  t.throws(() => parseMasterKeys({ MASTER_KEY: k1.toString('hex') }), /exactly 32 bytes/, 'hex is not base64 of 32 bytes')
  t.throws(() => parseMasterKeys({ MASTER_KEYS: b64(k1) }), /MASTER_KEYS must look like/)
  t.throws(() => parseMasterKeys({ MASTER_KEYS: `0:${b64(k1)}` }), /invalid version/)
  t.throws(() => parseMasterKeys({ MASTER_KEYS: `1:${b64(k1)},1:${b64(k2)}` }), /appears twice/)
  t.throws(() => parseMasterKeys({ MASTER_KEYS: `1:${b64(k1)},2:abc` }), /MASTER_KEYS version 2 must be/)
})

t.test('development master key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'armoire-key-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  const path = join(dir, 'storage', 'master.key')
  const first = await loadOrCreateDevMasterKey(path)
  t.equal(first.created, true)
  t.equal(first.key.length, 32)
  t.equal((await stat(path)).mode & 0o777, 0o600, 'mode 0600')

  const second = await loadOrCreateDevMasterKey(path)
  t.equal(second.created, false)
  t.same(second.key, first.key, 'reused')

  const racePath = join(dir, 'race', 'master.key')
  const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateDevMasterKey(racePath)))
  t.equal(results.filter((r) => r.created).length, 1, 'exactly one starter creates it')
  t.ok(results.every((r) => r.key.equals(results[0]!.key)), 'all starters agree on the key')
  t.same(await readdir(join(dir, 'race')), ['master.key'], 'no temp files left')

  const processPath = join(dir, 'processes', 'master.key')
  const script = `
    const { loadOrCreateDevMasterKey } = await import(${JSON.stringify(new URL('../../src/crypto/keys.ts', import.meta.url).href)})
    const { key, created } = await loadOrCreateDevMasterKey(${JSON.stringify(processPath)})
    console.log(JSON.stringify({ key: key.toString('hex'), created }))`
  const outputs = await Promise.all(
    Array.from({ length: 4 }, () =>
      run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]).then((r) => JSON.parse(r.stdout)),
    ),
  )
  t.equal(outputs.filter((o) => o.created).length, 1, 'four processes: one creates')
  t.equal(new Set(outputs.map((o) => o.key)).size, 1, 'four processes: one key')

  const corrupt = join(dir, 'corrupt.key')
  await writeFile(corrupt, 'not a key\n')
  await t.rejects(loadOrCreateDevMasterKey(corrupt), /master key file .* must be the base64 encoding of exactly 32 bytes/)
})

t.test('deriveKey (HKDF-SHA256), checked against WebCrypto', async (t) => {
  const master = randomBytes(32)
  const totp = deriveKey(master, 'totp')
  t.equal(totp.length, 32)
  t.same(deriveKey(master, 'totp'), totp, 'deterministic')
  t.not(deriveKey(master, 'other').toString('hex'), totp.toString('hex'), 'purpose separates')
  t.not(deriveKey(randomBytes(32), 'totp').toString('hex'), totp.toString('hex'), 'master separates')

  const base = await webcrypto.subtle.importKey('raw', master, 'HKDF', false, ['deriveBits'])
  const bits = await webcrypto.subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: new TextEncoder().encode('armoire:totp') },
    base,
    256,
  )
  t.same(Buffer.from(bits), totp)
  t.throws(() => deriveKey(master, ''), /purpose/)
})
