import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import t from 'tap'
import { describeRotation, rotateMasterKeys } from '../../scripts/keys-rotate.ts'
import { createKmsKeySource, parseKmsKeyIds } from '../../src/crypto/kms.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { type FakeKms, kmsEnv, startFakeKms } from '../helpers/kms-server.ts'
import { enrollTotp, login, totpNow } from '../helpers/mfa.ts'
import { tree, uploadFile } from '../documents/helpers.ts'

const run = promisify(execFile)
const options = (kms: FakeKms) => ({ endpoint: kms.url, region: kms.region, accessKeyId: kms.accessKeyId, secretAccessKey: kms.secretAccessKey })

t.test('rotation through KMS: key 1 → key 2 with npm run keys:rotate, then key 1 disabled and nothing needs it', async (t) => {
  const kms = await startFakeKms(t)
  const one = kms.createKey()
  const two = kms.createKey('alias/armoire-2')
  const env = { STORAGE_DIR: await testStorage(t), DATABASE_URL: await testDatabase(t) }
  const before = await build(t, { ...env, ...kmsEnv(kms, `1=${one.arn}`) })
  const admin = await signUp(before)
  const { dossier } = await tree(before, admin)
  const contents = new Map<string, Buffer>()
  for (let i = 0; i < 3; i++) {
    const content = randomBytes(70_000 + i)
    contents.set((await uploadFile(before, admin, dossier, content, { filename: `f${i}` })).fichier.id, content)
  }
  const { secret } = await enrollTotp(before, admin)
  await before.close()

  const both = { ...process.env, ...env, ...kmsEnv(kms, `1=${one.arn},2=${two.alias}`) }
  const script = await run(process.execPath, ['--import', 'tsx', 'scripts/keys-rotate.ts'], { env: both })
  t.match(script.stdout, /^cles_chiffrement: 3 re-wrapped; all under version 2$/m)
  t.match(script.stdout, /^totp: 1 re-wrapped; all under version 2$/m)
  t.match(script.stdout, /versions 1 can be removed from KMS_KEY_IDS/)
  const rewraps = kms.calls.filter((c) => c.target === 'TrentService.Encrypt' && c.keyId === two.alias)
  t.ok(rewraps.length >= 4, 'each secret re-encrypted under key 2, by KMS')

  kms.setEnabled(one.arn, false)
  const seen = kms.calls.length
  const after = await build(t, { ...env, ...kmsEnv(kms, `2=${two.alias}`) })
  for (const [id, content] of contents) {
    const res = await after.inject({ method: 'GET', url: `/fichiers/${id}/contenu`, headers: admin.headers })
    t.equal(res.statusCode, 200)
    t.ok(res.rawPayload.equals(content), `${id} reads under key 2 alone`)
  }
  const step = await login(after, admin)
  const challenge = await after.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.mfa_token, code: totpNow(secret, 1) } })
  t.equal(challenge.statusCode, 200, challenge.body)
  const later = kms.calls.slice(seen)
  t.ok(later.length >= 4, 'KMS was asked')
  t.same(later.filter((c) => c.status !== 200), [], 'no call needed the disabled key 1')
  const keys = await after.db.selectFrom('cles_chiffrement').select('version_cle_maitre').where('organisation_id', '=', admin.organisationId).execute()
  t.ok(keys.every((k) => k.version_cle_maitre === 2))

  t.test('a secret whose KMS key is disabled before rotating is reported unreadable, not lost', async (t) => {
    const three = kms.createKey()
    kms.setEnabled(two.alias!, false)
    const source = createKmsKeySource({ ...options(kms), keyIds: parseKmsKeyIds(`2=${two.alias},3=${three.arn}`) })
    const result = await rotateMasterKeys(after.db, source)
    t.match(result, { rewrapped: 0, currentVersion: 3, removable: [] })
    const { lines, complete } = describeRotation(result, 'KMS_KEY_IDS')
    t.notOk(complete, 'the run says it is not done')
    t.match(lines.join('\n'), /^cles_chiffrement: 0 re-wrapped, 3 unreadable \(their master key version is not in KMS_KEY_IDS\)/m)
    t.match(lines.join('\n'), /keep them in KMS_KEY_IDS/)
  })
})
