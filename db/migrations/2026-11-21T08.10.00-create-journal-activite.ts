import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // No foreign keys on purpose: journal rows outlive the users and objects they mention.
  await db.schema
    .createTable('journal_activite')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('organisation_id', 'uuid')
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('utilisateur_id', 'uuid')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('cible_type', 'text')
    .addColumn('cible_id', 'text')
    .addColumn('cible_nom', 'text')
    .addColumn('resultat', 'text', (c) => c.notNull().check(sql`resultat in ('succes', 'echec', 'refus')`))
    .addColumn('severite', 'text', (c) => c.notNull().check(sql`severite in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')`))
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('hash_precedent', 'bytea')
    .addColumn('hash', 'bytea', (c) => c.notNull())
    .execute()
  // One chain per organisation (and one for platform events, organisation_id null).
  await sql`create unique index journal_activite_chaine_key on journal_activite (organisation_id, sequence) nulls not distinct`.execute(db)
  await db.schema.createIndex('journal_activite_org_id_idx').on('journal_activite').columns(['organisation_id', 'id']).execute()
  await db.schema
    .createIndex('journal_activite_utilisateur_idx')
    .on('journal_activite')
    .columns(['organisation_id', 'utilisateur_id', 'id'])
    .execute()
  await db.schema
    .createIndex('journal_activite_cible_idx')
    .on('journal_activite')
    .columns(['organisation_id', 'cible_type', 'cible_id'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('journal_activite').execute()
}
