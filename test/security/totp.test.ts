import { randomUUID } from 'node:crypto'
import t from 'tap'
import { useProof } from '../../plugins/security/factors.ts'
import { matchTotp, openTotpSecret, sealTotpSecret, TOTP_PARAMS, type TotpParams } from '../../plugins/security/totp.ts'
import { signUp } from '../helpers/auth.ts'
import { build } from '../helpers/build.ts'
import { totpAt } from '../helpers/mfa.ts'

// RFC 6238, appendix B: the seeds are ASCII, one per hash, and the codes have 8 digits.
const SEEDS = {
  SHA1: Buffer.from('12345678901234567890', 'ascii'),
  SHA256: Buffer.from('12345678901234567890123456789012', 'ascii'),
  SHA512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234', 'ascii'),
}
const VECTORS: Array<[number, keyof typeof SEEDS, string]> = [
  [59, 'SHA1', '94287082'],
  [59, 'SHA256', '46119246'],
  [59, 'SHA512', '90693936'],
  [1111111109, 'SHA1', '07081804'],
  [1111111109, 'SHA256', '68084774'],
  [1111111109, 'SHA512', '25091201'],
  [1111111111, 'SHA1', '14050471'],
  [1111111111, 'SHA256', '67062674'],
  [1111111111, 'SHA512', '99943326'],
  [1234567890, 'SHA1', '89005924'],
  [1234567890, 'SHA256', '91819424'],
  [1234567890, 'SHA512', '93441116'],
  [2000000000, 'SHA1', '69279037'],
  [2000000000, 'SHA256', '90698825'],
  [2000000000, 'SHA512', '38618901'],
  [20000000000, 'SHA1', '65353130'],
  [20000000000, 'SHA256', '77737706'],
  [20000000000, 'SHA512', '47863826'],
]

t.test('RFC 6238 test vectors pass the check the server makes', async (t) => {
  for (const [seconds, algorithm, code] of VECTORS) {
    const params: TotpParams = { ...TOTP_PARAMS, algorithm, digits: 8 }
    const step = Math.floor(seconds / 30)
    t.equal(matchTotp(SEEDS[algorithm], code, { at: seconds * 1000, lastStep: null, params }), step, `T=${seconds} ${algorithm} → ${code}`)
    t.equal(matchTotp(SEEDS[algorithm], code, { at: seconds * 1000, lastStep: step, params }), null, 'and never twice for the same step')
    t.equal(totpAt(SEEDS[algorithm], seconds * 1000, { digits: 8, algorithm: algorithm.toLowerCase() as 'sha1' }), code, 'the tests’ own generator agrees')
  }
})

t.test('the window is one step either side, and a step older than the last one used is refused', async (t) => {
  const seed = SEEDS.SHA1
  const at = 1_234_567_890_000
  const step = Math.floor(at / 30_000)
  const code = (offset: number) => totpAt(seed, at + offset * 30_000)
  t.equal(matchTotp(seed, code(-1), { at, lastStep: null }), step - 1)
  t.equal(matchTotp(seed, code(1), { at, lastStep: null }), step + 1)
  t.equal(matchTotp(seed, code(-2), { at, lastStep: null }), null, 'two steps behind: refused')
  t.equal(matchTotp(seed, code(2), { at, lastStep: null }), null, 'two steps ahead: refused')
  t.equal(matchTotp(seed, code(-1), { at, lastStep: step }), null, 'behind the last step used: refused')
  t.equal(matchTotp(seed, ' 287 082 ', { at: 59_000, lastStep: null }), 1, 'spaces are ignored (6-digit form of the RFC vector)')
  t.equal(matchTotp(seed, 'abcdef', { at, lastStep: null }), null)
})

t.test('the RFC secret, sealed by the master key, verifies through the server’s whole path once', async (t) => {
  const app = await build(t)
  const admin = await signUp(app)
  const factorId = randomUUID()
  const sealed = await sealTotpSecret(app.keys, factorId, SEEDS.SHA1)
  t.notOk(sealed.wrapped.includes(SEEDS.SHA1), 'the stored form does not contain the secret')
  t.same(await openTotpSecret(app.keys, factorId, sealed.wrapped, sealed.masterKeyVersion), SEEDS.SHA1)
  await t.rejects(openTotpSecret(app.keys, randomUUID(), sealed.wrapped, sealed.masterKeyVersion), 'bound to its factor: does not open elsewhere')

  await app.db
    .insertInto('facteurs_mfa')
    .values({
      id: factorId,
      organisation_id: admin.organisationId,
      utilisateur_id: admin.userId,
      methode: 'totp',
      secret_chiffre: sealed.wrapped,
      version_cle_maitre: sealed.masterKeyVersion,
      active_at: new Date(),
    })
    .execute()
  const check = async (code: string, at: number) =>
    app.db.transaction().execute(async (trx) => {
      const factor = await trx.selectFrom('facteurs_mfa').selectAll().where('id', '=', factorId).executeTakeFirstOrThrow()
      return useProof(app, trx, { id: admin.userId, organisation_id: admin.organisationId, email: admin.email }, [factor], { code }, at)
    })
  // The server's codes have 6 digits: the RFC's 8-digit value modulo 10^6.
  t.equal(await check('287082', 59_000), 'totp', 'T=59 accepted')
  t.equal(await check('287082', 59_000), null, 'the same code is refused the second time')
  const row = await app.db.selectFrom('facteurs_mfa').select('dernier_pas').where('id', '=', factorId).executeTakeFirstOrThrow()
  t.equal(row.dernier_pas, 1, 'the step used is remembered')
  t.equal(await check('081804', 1_111_111_109_000), 'totp', 'a later step is accepted')
})
