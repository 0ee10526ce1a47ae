import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('utilisateurs')
    .addColumn('email_verifie_at', 'timestamptz')
    // Wrong second-factor codes have their own counter and lock, apart from password failures.
    .addColumn('echecs_mfa', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('mfa_bloque_jusqua', 'timestamptz')
    .execute()
  await db.schema.alterTable('organisations').addColumn('mfa_obligatoire', 'boolean', (c) => c.notNull().defaultTo(false)).execute()
  await db.schema
    .alterTable('sessions')
    // The sign-in proved a second factor (Armoire's, or the SSO provider's `amr`).
    .addColumn('second_facteur', 'boolean', (c) => c.notNull().defaultTo(false))
    // The organisation requires 2FA and the member has none: the session may only enroll.
    .addColumn('enrolement_mfa', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute()

  // A pending factor (active_at null) becomes active once a code it produced is verified.
  await db.schema
    .createTable('facteurs_mfa')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull().references('utilisateurs.id').onDelete('cascade'))
    .addColumn('methode', 'text', (c) => c.notNull().check(sql`methode in ('totp', 'email')`))
    .addColumn('secret_chiffre', 'bytea')
    .addColumn('version_cle_maitre', 'integer')
    .addColumn('dernier_pas', 'bigint')
    .addColumn('code_hash', 'bytea')
    .addColumn('code_expire_at', 'timestamptz')
    .addColumn('active_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('facteurs_mfa_methode_key', ['utilisateur_id', 'methode'])
    .addCheckConstraint('facteurs_mfa_totp_check', sql`methode <> 'totp' or (secret_chiffre is not null and version_cle_maitre is not null)`)
    .execute()

  await db.schema
    .createTable('codes_secours')
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull().references('utilisateurs.id').onDelete('cascade'))
    .addColumn('hash', 'bytea', (c) => c.notNull())
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('used_at', 'timestamptz')
    .addPrimaryKeyConstraint('codes_secours_pkey', ['utilisateur_id', 'hash'])
    .execute()

  // Short-lived secrets handed out once (reset links, verification links, 2FA steps, SSO
  // states): only their SHA-256 is kept.
  await db.schema
    .createTable('jetons_usage_unique')
    .addColumn('hash', 'bytea', (c) => c.primaryKey())
    .addColumn('usage', 'text', (c) =>
      c.notNull().check(sql`usage in ('reinitialisation_mot_de_passe', 'verification_email', 'mfa', 'etat_sso')`),
    )
    .addColumn('organisation_id', 'uuid', (c) => c.references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.references('utilisateurs.id').onDelete('cascade'))
    .addColumn('donnees', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('tentatives', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('jetons_usage_unique_utilisateur_idx').on('jetons_usage_unique').columns(['utilisateur_id', 'usage']).execute()
  await db.schema.createIndex('jetons_usage_unique_expiration_idx').on('jetons_usage_unique').column('expires_at').execute()

  // An OpenID identity is its issuer and subject; the e-mail is kept as it was at linking.
  await db.schema
    .createTable('identites_sso')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull().references('utilisateurs.id').onDelete('cascade'))
    .addColumn('fournisseur', 'text', (c) => c.notNull())
    .addColumn('emetteur', 'text', (c) => c.notNull())
    .addColumn('sujet', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_login_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('identites_sso_sujet_key', ['emetteur', 'sujet'])
    .execute()
  await db.schema.createIndex('identites_sso_utilisateur_idx').on('identites_sso').column('utilisateur_id').execute()

  // One organisation per e-mail domain, platform-wide: it decides where unknown addresses land.
  await db.schema
    .createTable('sso_domaines')
    .addColumn('domaine', 'text', (c) => c.primaryKey().check(sql`domaine = lower(domaine)`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('role_defaut', 'text', (c) => c.notNull().check(sql`role_defaut in ('admin', 'contributeur', 'lecteur')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('sso_domaines_organisation_idx').on('sso_domaines').column('organisation_id').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['sso_domaines', 'identites_sso', 'jetons_usage_unique', 'codes_secours', 'facteurs_mfa']) {
    await db.schema.dropTable(table).execute()
  }
  await db.schema.alterTable('sessions').dropColumn('enrolement_mfa').dropColumn('second_facteur').execute()
  await db.schema.alterTable('organisations').dropColumn('mfa_obligatoire').execute()
  await db.schema.alterTable('utilisateurs').dropColumn('mfa_bloque_jusqua').dropColumn('echecs_mfa').dropColumn('email_verifie_at').execute()
}
