import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createKmsKeySource, parseKmsKeyIds } from '../../src/crypto/kms.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testStorage } from '../helpers/build.ts'
import { kmsEnv, startFakeKms } from '../helpers/kms-server.ts'
import { enrollTotp, login, totpNow } from '../helpers/mfa.ts'
import { filesUnder, tree, upload, uploadFile } from '../documents/helpers.ts'

const download = (app: Awaited<ReturnType<typeof build>>, headers: Record<string, string>, id: string) =>
  app.inject({ method: 'GET', url: `/fichiers/${id}/contenu`, headers })

t.test('data keys are wrapped by KMS: upload, download byte for byte, the row holds what KMS produced', async (t) => {
  const kms = await startFakeKms(t)
  const key = kms.createKey()
  const app = await build(t, kmsEnv(kms, `1=${key.arn}`))
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  const content = randomBytes(150_000)
  const file = await uploadFile(app, admin, dossier, content)

  const res = await download(app, admin.headers, file.fichier.id)
  t.equal(res.statusCode, 200)
  t.ok(res.rawPayload.equals(content), 'the download is the upload')

  const row = await app.db
    .selectFrom('versions_fichiers as v')
    .innerJoin('cles_chiffrement as k', 'k.id', 'v.cle_id')
    .select(['k.id', 'k.cle_enveloppee', 'k.version_cle_maitre'])
    .where('v.id', '=', file.version.id)
    .executeTakeFirstOrThrow()
  const made = kms.produced.find((p) => row.cle_enveloppee?.equals(p.blob))
  t.ok(made, 'the stored wrapped key is a ciphertext KMS produced')
  t.equal(made?.keyId, key.keyId, 'under the configured key')
  t.equal(made?.plaintext.length, 32, 'of a 256-bit data key')
  t.notOk(row.cle_enveloppee!.includes(made!.plaintext), 'the data key is not in the row')
  t.equal(row.version_cle_maitre, 1)
  const encrypt = kms.calls.find((c) => c.target === 'TrentService.Encrypt' && c.context?.armoire?.includes(row.id))
  t.match(encrypt, { keyId: key.arn, status: 200 }, 'Encrypt named the key, with the row in the encryption context')
  t.ok(
    kms.calls.some((c) => c.target === 'TrentService.Decrypt' && c.keyId === key.arn && c.status === 200 && c.context?.armoire === encrypt?.context?.armoire),
    'the download asked KMS to Decrypt, in the same context',
  )

  t.test('a wrapped key copied to another row does not unwrap there', async (t) => {
    const other = await uploadFile(app, admin, dossier, Buffer.from('autre'), { filename: 'autre.txt' })
    const otherKey = await app.db.selectFrom('versions_fichiers').select('cle_id').where('id', '=', other.version.id).executeTakeFirstOrThrow()
    await app.db.updateTable('cles_chiffrement').set({ cle_enveloppee: row.cle_enveloppee }).where('id', '=', otherKey.cle_id).execute()
    const res = await download(app, admin.headers, other.fichier.id)
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'INTEGRITY_ERROR')
    t.match(kms.calls.at(-1), { target: 'TrentService.Decrypt', status: 400, error: 'InvalidCiphertextException' }, 'KMS refused the foreign context')
    t.ok((await download(app, admin.headers, file.fichier.id)).rawPayload.equals(content), 'the original row still reads')
  })

  t.test('2FA enrolment: the TOTP secret is wrapped by KMS too', async (t) => {
    const member = await signUp(app)
    const { secret } = await enrollTotp(app, member)
    const factor = await app.db.selectFrom('facteurs_mfa').select(['secret_chiffre', 'version_cle_maitre']).where('utilisateur_id', '=', member.userId).where('methode', '=', 'totp').executeTakeFirstOrThrow()
    t.ok(kms.produced.some((p) => factor.secret_chiffre?.equals(p.blob)), 'the sealed secret is a KMS ciphertext')
    const step = await login(app, member)
    const challenge = await app.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.mfa_token, code: totpNow(secret, 1) } })
    t.equal(challenge.statusCode, 200, challenge.body)
  })
})

t.test('KMS out of reach: a 503 problem that says nothing of the cause, nothing stored, and back once KMS is', async (t) => {
  const kms = await startFakeKms(t)
  const key = kms.createKey()
  const storage = await testStorage(t)
  const app = await build(t, { ...kmsEnv(kms, `1=${key.arn}`), STORAGE_DIR: storage })
  const admin = await signUp(app)
  const { dossier } = await tree(app, admin)
  const before = await uploadFile(app, admin, dossier, Buffer.from('avant'), { filename: 'avant.txt' })
  const blobsBefore = (await filesUnder(storage)).length

  kms.down(true)
  const refused = await upload(app, admin, `/dossiers/${dossier}/fichiers`, randomBytes(5_000), { filename: 'pendant.bin' })
  t.equal(refused.statusCode, 503)
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
  t.match(refused.json(), { status: 503, code: 'KMS_UNAVAILABLE', type: 'urn:armoire:problem:kms-unavailable' })
  t.notMatch(refused.body, /127\.0\.0\.1|ECONN|socket|Encrypt|arn:/i, 'no internals')
  t.ok(refused.headers['retry-after'])
  t.equal((await filesUnder(storage)).length, blobsBefore, 'the blob written ahead is gone')
  t.notOk(await app.db.selectFrom('fichiers').select('id').where('nom', '=', 'pendant.bin').executeTakeFirst(), 'no file row')

  const read = await download(app, admin.headers, before.fichier.id)
  t.equal(read.statusCode, 503, 'a download waits for KMS too')
  t.equal(read.json().code, 'KMS_UNAVAILABLE', 'not an integrity failure')
  const integrity = await app.db.selectFrom('journal_activite').select('id').where('organisation_id', '=', admin.organisationId).where('action', '=', 'FILE_INTEGRITY_FAILED').execute()
  t.same(integrity, [], 'nothing journaled as an integrity failure')

  kms.down(false)
  t.equal((await download(app, admin.headers, before.fichier.id)).body, 'avant', 'readable again')
  await uploadFile(app, admin, dossier, Buffer.from('après'), { filename: 'après.txt' })

  t.test('the current key disabled: new content is refused with the same 503', async (t) => {
    kms.setEnabled(key.arn, false)
    const res = await upload(app, admin, `/dossiers/${dossier}/fichiers`, Buffer.from('x'), { filename: 'désactivée.txt' })
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'KMS_UNAVAILABLE')
    t.match(kms.calls.at(-1), { target: 'TrentService.Encrypt', error: 'DisabledException' })
  })
})

t.test('wrong credentials: KMS refuses the signature, and that is KMS unavailable, not an unreadable key', async (t) => {
  const kms = await startFakeKms(t)
  const key = kms.createKey()
  const options = { keyIds: new Map([[1, key.arn]]), endpoint: kms.url, region: kms.region, secretAccessKey: kms.secretAccessKey }
  const wrapped = await createKmsKeySource({ ...options, accessKeyId: kms.accessKeyId }).wrap(randomBytes(32), 'a')
  const stranger = createKmsKeySource({ ...options, accessKeyId: 'AKIAOTHERACCOUNT0000' })
  await t.rejects(stranger.wrap(randomBytes(32), 'a'), { code: 'KMS_UNAVAILABLE', statusCode: 503 })
  await t.rejects(stranger.unwrap(wrapped.wrapped, 1, 'a'), { code: 'KMS_UNAVAILABLE' }, 'rotation stops rather than counting it unreadable')
  t.match(kms.calls.at(-1), { target: 'TrentService.Decrypt', error: 'UnrecognizedClientException' })
})

t.test('KMS_KEY_IDS: versions to key ids, ARNs and their colons included', async (t) => {
  const arn = 'arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
  t.same([...parseKmsKeyIds(` 1=${arn} , 2=alias/armoire-2`)], [[1, arn], [2, 'alias/armoire-2']])
  t.throws(() => parseKmsKeyIds(`1:${arn}`), /must look like "1=arn/)
  t.throws(() => parseKmsKeyIds('0=alias/a'), /invalid version 0/)
  t.throws(() => parseKmsKeyIds('1=alias/a,1=alias/b'), /version 1 appears twice/)
  t.throws(() => createKmsKeySource({ keyIds: new Map() }), /at least one KMS key id/)
})
