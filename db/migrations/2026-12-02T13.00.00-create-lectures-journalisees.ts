import { type Kysely, sql } from 'kysely'

/**
 * Downloads are journaled once per (session, version, address) within a window: this table
 * holds the window each of those opened, and how many reads it has folded since. A Range-heavy
 * client (a video player, a resumable download) then takes the journal's chain lock once per
 * window instead of once per request.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('lectures_journalisees')
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('version_id', 'uuid', (c) => c.notNull().references('versions_fichiers.id').onDelete('cascade'))
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('organisation_id', 'uuid', (c) => c.notNull())
    .addColumn('journalise_at', 'timestamptz', (c) => c.notNull())
    .addColumn('derniere_lecture_at', 'timestamptz', (c) => c.notNull())
    .addColumn('lectures', 'integer', (c) => c.notNull().defaultTo(1))
    .addPrimaryKeyConstraint('lectures_journalisees_pkey', ['session_id', 'version_id', 'ip'])
    .execute()
  await db.schema.createIndex('lectures_journalisees_version_idx').on('lectures_journalisees').column('version_id').execute()
  await db.schema.createIndex('lectures_journalisees_journalise_idx').on('lectures_journalisees').column('journalise_at').execute()
  await sql`comment on table lectures_journalisees is 'Fenêtre de journalisation des téléchargements, par session, version et adresse'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('lectures_journalisees').execute()
}
