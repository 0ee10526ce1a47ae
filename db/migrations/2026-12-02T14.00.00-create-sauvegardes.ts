import { type Kysely, sql } from 'kysely'

/*
 * Backups: one row per archive, an encrypted ZIP in the blob store under its own data key,
 * which lives in cles_chiffrement beside the keys of file versions (so master-key rotation
 * re-wraps it too, and deleting a backup shreds it the same way). Restores are recorded apart.
 */

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table cles_chiffrement alter column fichier_id drop not null, alter column version_id drop not null,
    add column sauvegarde_id uuid,
    add constraint cles_chiffrement_objet_check check ((fichier_id is not null and version_id is not null) <> (sauvegarde_id is not null))`.execute(db)

  await db.schema
    .createTable('sauvegardes')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('fichier', 'dossier', 'casier', 'armoire', 'systeme')`))
    // No foreign key: the backed-up object may be deleted and purged, which is when the backup matters.
    .addColumn('cible_id', 'uuid')
    .addColumn('declencheur', 'text', (c) => c.notNull().check(sql`declencheur in ('manuel', 'planifie', 'import')`))
    .addColumn('statut', 'text', (c) => c.notNull().defaultTo('en_attente').check(sql`statut in ('en_attente', 'en_cours', 'terminee', 'echec')`))
    .addColumn('versions', 'text', (c) => c.notNull().defaultTo('derniere').check(sql`versions in ('derniere', 'toutes')`))
    .addColumn('contenu', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    // The blob name of the archive, never a path; set once writing starts, so a crash can clean it up.
    .addColumn('chemin', 'text')
    .addColumn('cle_id', 'uuid', (c) => c.references('cles_chiffrement.id'))
    .addColumn('taille', 'bigint', (c) => c.check(sql`taille >= 0`))
    .addColumn('sha256', 'text', (c) => c.check(sql`sha256 ~ '^[0-9a-f]{64}$'`))
    .addColumn('progression', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('erreur', 'jsonb')
    .addColumn('verifiee_le', 'timestamptz')
    .addColumn('verification', 'jsonb')
    .addColumn('planification_id', 'uuid')
    // The last sign of life of the job building it: a stale one was interrupted.
    .addColumn('battement_le', 'timestamptz')
    .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('demarree_le', 'timestamptz')
    .addColumn('terminee_le', 'timestamptz')
    .addCheckConstraint('sauvegardes_cible_check', sql`(type = 'systeme') = (cible_id is null)`)
    .addCheckConstraint('sauvegardes_terminee_check', sql`statut <> 'terminee' or (chemin is not null and taille is not null and sha256 is not null and cle_id is not null)`)
    .execute()
  await sql`create index sauvegardes_liste_idx on sauvegardes (organisation_id, created_at desc, id desc)`.execute(db)
  await sql`create index sauvegardes_cible_idx on sauvegardes (organisation_id, type, cible_id, created_at)`.execute(db)
  await sql`create index sauvegardes_en_cours_idx on sauvegardes (battement_le) where statut = 'en_cours'`.execute(db)

  await db.schema
    .createTable('restaurations')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    // No foreign key: the record of a restore outlives the backup it came from.
    .addColumn('sauvegarde_id', 'uuid', (c) => c.notNull())
    .addColumn('cible_type', 'text', (c) => c.check(sql`cible_type in ('armoire', 'casier', 'dossier')`))
    .addColumn('cible_id', 'uuid')
    .addColumn('elements', 'jsonb')
    .addColumn('simulation', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('statut', 'text', (c) => c.notNull().defaultTo('en_attente').check(sql`statut in ('en_attente', 'en_cours', 'terminee', 'echec')`))
    .addColumn('rapport', 'jsonb')
    .addColumn('erreur', 'jsonb')
    .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('demarree_le', 'timestamptz')
    .addColumn('terminee_le', 'timestamptz')
    .execute()
  await sql`create index restaurations_liste_idx on restaurations (organisation_id, created_at desc, id desc)`.execute(db)

  // A version brought back from a backup says which one.
  await sql`alter table versions_fichiers add column restauree_de_sauvegarde uuid`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table versions_fichiers drop column restauree_de_sauvegarde`.execute(db)
  await db.schema.dropTable('restaurations').execute()
  await db.schema.dropTable('sauvegardes').execute()
  await sql`delete from cles_chiffrement where sauvegarde_id is not null`.execute(db)
  await sql`alter table cles_chiffrement drop constraint cles_chiffrement_objet_check, drop column sauvegarde_id,
    alter column fichier_id set not null, alter column version_id set not null`.execute(db)
}
