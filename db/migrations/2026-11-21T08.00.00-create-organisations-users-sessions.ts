import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('organisations')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('nom', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createTable('utilisateurs')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('nom', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'contributeur', 'lecteur')`))
    .addColumn('actif', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('mot_de_passe_hash', 'text')
    .addColumn('echecs_connexion', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('bloque_jusqua', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await sql`create unique index utilisateurs_email_key on utilisateurs (lower(email))`.execute(db)
  await db.schema.createIndex('utilisateurs_organisation_idx').on('utilisateurs').columns(['organisation_id', 'created_at']).execute()

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('utilisateur_id', 'uuid', (c) => c.notNull().references('utilisateurs.id').onDelete('cascade'))
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('revoked_reason', 'text')
    .execute()
  await db.schema.createIndex('sessions_utilisateur_idx').on('sessions').columns(['utilisateur_id', 'created_at']).execute()

  // Every refresh token ever issued, so that presenting a rotated one is recognised as reuse.
  await db.schema
    .createTable('jetons_rafraichissement')
    .addColumn('hash', 'bytea', (c) => c.primaryKey())
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('used_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('jetons_rafraichissement_session_idx').on('jetons_rafraichissement').column('session_id').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('jetons_rafraichissement').execute()
  await db.schema.dropTable('sessions').execute()
  await db.schema.dropTable('utilisateurs').execute()
  await db.schema.dropTable('organisations').execute()
}
