import { type Kysely, sql } from 'kysely'

/*
 * A restore beats a heartbeat like a backup, so one whose process died is noticed; scheduled
 * backups carry their cron, time zone and retention policy (restic/Borg `forget --keep-*`).
 */

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table restaurations add column battement_le timestamptz`.execute(db)
  await sql`create index restaurations_en_cours_idx on restaurations (battement_le) where statut = 'en_cours'`.execute(db)

  await db.schema
    .createTable('planifications_sauvegarde')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('fichier', 'dossier', 'casier', 'armoire', 'systeme')`))
    .addColumn('cible_id', 'uuid')
    .addColumn('frequence', 'text', (c) => c.notNull())
    .addColumn('fuseau', 'text', (c) => c.notNull().defaultTo('Europe/Paris'))
    .addColumn('versions', 'text', (c) => c.notNull().defaultTo('derniere').check(sql`versions in ('derniere', 'toutes')`))
    .addColumn('conservation', 'jsonb', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('derniere_execution', 'timestamptz')
    .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('planifications_sauvegarde_cible_check', sql`(type = 'systeme') = (cible_id is null)`)
    .execute()
  await sql`create index planifications_sauvegarde_org_idx on planifications_sauvegarde (organisation_id, created_at desc, id desc)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('planifications_sauvegarde').execute()
  await sql`alter table restaurations drop column battement_le`.execute(db)
}
