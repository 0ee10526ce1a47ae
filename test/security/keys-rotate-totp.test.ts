import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import t from 'tap'
import { rotateMasterKeys } from '../../scripts/keys-rotate.ts'
import { createLocalKeySource } from '../../src/crypto/keys.ts'
import { registeredWrappedColumns } from '../../src/keys.ts'
import { signUp } from '../helpers/auth.ts'
import { build, testDatabase, testStorage } from '../helpers/build.ts'
import { enrollTotp, login, totpNow } from '../helpers/mfa.ts'

const run = promisify(execFile)

t.test('rotation re-wraps TOTP secrets: enrol, rotate, restart with the new key only, sign in with the app', async (t) => {
  const [one, two] = [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')]
  const env = { STORAGE_DIR: await testStorage(t), DATABASE_URL: await testDatabase(t) }
  const before = await build(t, { ...env, MASTER_KEYS: `1:${one}` })
  const member = await signUp(before)
  const { secret } = await enrollTotp(before, member)
  await before.close()

  const script = await run(process.execPath, ['--import', 'tsx', 'scripts/keys-rotate.ts'], { env: { ...process.env, ...env, MASTER_KEYS: `1:${one},2:${two}` } })
  t.match(script.stdout, /^totp: 1 re-wrapped; all under version 2$/m, 'reported per kind')
  t.match(script.stdout, /versions 1 can be removed from MASTER_KEYS/)

  const after = await build(t, { ...env, MASTER_KEYS: `2:${two}` })
  const step = await login(after, member)
  t.ok(step.mfa_token, 'the 2FA step')
  const challenge = await after.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.mfa_token, code: totpNow(secret, 1) } })
  t.equal(challenge.statusCode, 200, challenge.body)
  t.ok(challenge.json().access_token, 'signed in with the authenticator app under the new key alone')
  const entry = await after.db.selectFrom('journal_activite').select('details').where('organisation_id', '=', member.organisationId).where('action', '=', 'MASTER_KEY_ROTATED').executeTakeFirstOrThrow()
  t.match(entry.details, { reenveloppes: { totp: 1 }, version_cle_maitre: 2 })
})

t.test('every wrapped column is registered: data keys and TOTP secrets', async (t) => {
  await import('../../src/app.ts')
  t.match(
    registeredWrappedColumns().map((c) => [c.kind, c.table, c.wrapped]).sort(),
    [
      ['cles_chiffrement', 'cles_chiffrement', 'cle_enveloppee'],
      ['exports_rgpd', 'exports_rgpd', 'cle_enveloppee'],
      ['factures_pdf', 'factures_pdf', 'cle_enveloppee'],
      ['journal_signature', 'cles_journal', 'cle_enveloppee'],
      ['totp', 'facteurs_mfa', 'secret_chiffre'],
    ],
  )
})

t.test('a secret whose master key is gone: a clear problem, journaled, and rotation says the version is still needed', async (t) => {
  const [one, two] = [randomBytes(32), randomBytes(32)]
  const env = { STORAGE_DIR: await testStorage(t), DATABASE_URL: await testDatabase(t) }
  const before = await build(t, { ...env, MASTER_KEYS: `1:${one.toString('base64')}` })
  const member = await signUp(before)
  const { secret, backupCodes } = await enrollTotp(before, member)
  await before.close()

  // Version 1 removed without rotating first.
  const after = await build(t, { ...env, MASTER_KEYS: `2:${two.toString('base64')}` })
  const step = await login(after, member)
  const challenge = await after.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.mfa_token, code: totpNow(secret, 1) } })
  t.equal(challenge.statusCode, 409, challenge.body)
  t.equal(challenge.json().code, 'MFA_SECRET_UNAVAILABLE')
  t.match(challenge.json().detail, /code de secours/)
  const entry = await after.db
    .selectFrom('journal_activite')
    .selectAll()
    .where('organisation_id', '=', member.organisationId)
    .where('action', '=', 'MFA_SECRET_UNREADABLE')
    .executeTakeFirstOrThrow()
  t.match(entry, { utilisateur_id: member.userId, resultat: 'echec', severite: 'CRITICAL', details: { methode: 'totp', version_cle_maitre: 1 } })
  const rescue = await after.inject({ method: 'POST', url: '/auth/2fa/challenge', payload: { mfa_token: step.mfa_token, code_secours: backupCodes[0] } })
  t.equal(rescue.statusCode, 200, 'a backup code still signs in')

  const result = await rotateMasterKeys(after.db, createLocalKeySource(new Map([[2, two]])))
  t.match(result, { remaining: 1, removable: [] })
  t.match(result.kinds.find((k) => k.kind === 'totp'), { rewrapped: 0, unreadable: 1, remainingByVersion: { 1: 1 } })
  const script = await run(process.execPath, ['--import', 'tsx', 'scripts/keys-rotate.ts'], { env: { ...process.env, ...env, MASTER_KEYS: `2:${two.toString('base64')}` } }).catch(
    (error: { code: number; stdout: string; stderr: string }) => error,
  )
  t.equal((script as { code?: number }).code, 1, 'the script fails')
  t.match(script.stderr, /totp: 0 re-wrapped, 1 unreadable .*still 1 under version 1/)
  t.match(script.stderr, /not done: 1 secrets still depend on master key version\(s\) 1; keep them in MASTER_KEYS/)
  t.notMatch(script.stdout, /can be removed/)

  // The key comes back: the same run finishes the job.
  const both = createLocalKeySource(new Map([[1, one], [2, two]]))
  t.match(await rotateMasterKeys(after.db, both), { remaining: 0, removable: [1] })
})
