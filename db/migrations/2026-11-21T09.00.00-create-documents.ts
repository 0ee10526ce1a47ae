import { type Kysely, sql } from 'kysely'

/*
 * Trash: deleting an element stamps it and every live descendant with the same
 * `suppression_id` (the id of the element the user deleted), so restoring brings back exactly
 * what that deletion hid. The trash lists the rows where `suppression_id = id`.
 * Sibling names are unique among live rows, case-insensitively (lower(nom)), because desktop
 * clients mirror the tree on case-insensitive file systems.
 */

/** The trash columns every element of the tree carries. */
function withTrash(table: any): any {
  return table
    .addColumn('deleted_at', 'timestamptz')
    .addColumn('deleted_by', 'uuid', (c: any) => c.references('utilisateurs.id').onDelete('set null'))
    .addColumn('suppression_id', 'uuid')
}

const nameCheck = sql`char_length(nom) between 1 and 255`

export async function up(db: Kysely<any>): Promise<void> {
  await withTrash(
    db.schema
      .createTable('armoires')
      .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
      .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
      .addColumn('nom', 'text', (c) => c.notNull().check(nameCheck))
      .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`)),
  )
    .addCheckConstraint('armoires_corbeille_check', sql`(deleted_at is null) = (suppression_id is null)`)
    .execute()
  await sql`create unique index armoires_nom_key on armoires (organisation_id, lower(nom)) where deleted_at is null`.execute(db)
  await sql`create index armoires_corbeille_idx on armoires (organisation_id, deleted_at, id) where suppression_id = id`.execute(db)

  await withTrash(
    db.schema
      .createTable('casiers')
      .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
      .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
      .addColumn('armoire_id', 'uuid', (c) => c.notNull().references('armoires.id').onDelete('cascade'))
      .addColumn('nom', 'text', (c) => c.notNull().check(nameCheck))
      .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`)),
  )
    .addCheckConstraint('casiers_corbeille_check', sql`(deleted_at is null) = (suppression_id is null)`)
    .execute()
  await sql`create unique index casiers_nom_key on casiers (armoire_id, lower(nom)) where deleted_at is null`.execute(db)
  await sql`create index casiers_corbeille_idx on casiers (organisation_id, deleted_at, id) where suppression_id = id`.execute(db)
  await db.schema.createIndex('casiers_suppression_idx').on('casiers').column('suppression_id').where(sql.ref('suppression_id'), 'is not', null).execute()

  // casier_id is kept on nested folders too, so a drawer's whole subtree is one index scan.
  await withTrash(
    db.schema
      .createTable('dossiers')
      .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
      .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
      .addColumn('casier_id', 'uuid', (c) => c.notNull().references('casiers.id').onDelete('cascade'))
      .addColumn('parent_id', 'uuid', (c) => c.references('dossiers.id').onDelete('cascade'))
      .addColumn('nom', 'text', (c) => c.notNull().check(nameCheck))
      .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`)),
  )
    .addCheckConstraint('dossiers_corbeille_check', sql`(deleted_at is null) = (suppression_id is null)`)
    .addCheckConstraint('dossiers_parent_check', sql`parent_id is distinct from id`)
    .execute()
  // A root folder's siblings are the drawer's other root folders; a sub-folder's, its parent's.
  await sql`create unique index dossiers_nom_key on dossiers (coalesce(parent_id, casier_id), lower(nom)) where deleted_at is null`.execute(db)
  await db.schema.createIndex('dossiers_casier_idx').on('dossiers').columns(['casier_id', 'parent_id']).execute()
  await db.schema.createIndex('dossiers_parent_idx').on('dossiers').column('parent_id').execute()
  await sql`create index dossiers_corbeille_idx on dossiers (organisation_id, deleted_at, id) where suppression_id = id`.execute(db)
  await db.schema.createIndex('dossiers_suppression_idx').on('dossiers').column('suppression_id').where(sql.ref('suppression_id'), 'is not', null).execute()

  await db.schema
    .createTable('cles_chiffrement')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    // No foreign keys: a destroyed key's row outlives its file and version, as evidence.
    .addColumn('fichier_id', 'uuid', (c) => c.notNull())
    .addColumn('version_id', 'uuid', (c) => c.notNull())
    .addColumn('algorithme', 'text', (c) => c.notNull())
    .addColumn('cle_enveloppee', 'bytea')
    .addColumn('version_cle_maitre', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('reenveloppee_at', 'timestamptz')
    .addColumn('detruite_at', 'timestamptz')
    .addColumn('detruite_par', 'uuid')
    .addCheckConstraint('cles_chiffrement_destruction_check', sql`(cle_enveloppee is null) = (detruite_at is not null)`)
    .execute()
  await sql`create index cles_chiffrement_rotation_idx on cles_chiffrement (version_cle_maitre, id) where cle_enveloppee is not null`.execute(db)
  await db.schema.createIndex('cles_chiffrement_fichier_idx').on('cles_chiffrement').columns(['organisation_id', 'fichier_id']).execute()

  // No cascade from dossiers: a file's rows go only through the purge, which shreds its keys first.
  await withTrash(
    db.schema
      .createTable('fichiers')
      .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
      .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
      .addColumn('dossier_id', 'uuid', (c) => c.notNull().references('dossiers.id'))
      .addColumn('nom', 'text', (c) => c.notNull().check(nameCheck))
      .addColumn('type_mime', 'text', (c) => c.notNull())
      .addColumn('taille', 'bigint', (c) => c.notNull().check(sql`taille >= 0`))
      .addColumn('sha256', 'text', (c) => c.notNull().check(sql`sha256 ~ '^[0-9a-f]{64}$'`))
      .addColumn('version_courante', 'integer', (c) => c.notNull().check(sql`version_courante >= 1`))
      .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`)),
  )
    .addCheckConstraint('fichiers_corbeille_check', sql`(deleted_at is null) = (suppression_id is null)`)
    .execute()
  await sql`create unique index fichiers_nom_key on fichiers (dossier_id, lower(nom)) where deleted_at is null`.execute(db)
  await sql`create index fichiers_created_idx on fichiers (dossier_id, created_at, id) where deleted_at is null`.execute(db)
  await sql`create index fichiers_updated_idx on fichiers (dossier_id, updated_at, id) where deleted_at is null`.execute(db)
  await sql`create index fichiers_taille_idx on fichiers (dossier_id, taille, id) where deleted_at is null`.execute(db)
  await db.schema.createIndex('fichiers_dossier_idx').on('fichiers').column('dossier_id').execute()
  await sql`create index fichiers_corbeille_idx on fichiers (organisation_id, deleted_at, id) where suppression_id = id`.execute(db)
  await db.schema.createIndex('fichiers_suppression_idx').on('fichiers').column('suppression_id').where(sql.ref('suppression_id'), 'is not', null).execute()

  await db.schema
    .createTable('versions_fichiers')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('fichier_id', 'uuid', (c) => c.notNull().references('fichiers.id').onDelete('cascade'))
    .addColumn('version_number', 'integer', (c) => c.notNull().check(sql`version_number >= 1`))
    .addColumn('nom', 'text', (c) => c.notNull())
    .addColumn('type_mime', 'text', (c) => c.notNull())
    .addColumn('taille', 'bigint', (c) => c.notNull().check(sql`taille >= 0`))
    .addColumn('sha256', 'text', (c) => c.notNull().check(sql`sha256 ~ '^[0-9a-f]{64}$'`))
    .addColumn('blob', 'text', (c) => c.notNull().unique())
    .addColumn('taille_chiffree', 'bigint', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('nonce_prefixe', 'bytea', (c) => c.notNull())
    .addColumn('cle_id', 'uuid', (c) => c.notNull().unique().references('cles_chiffrement.id'))
    .addColumn('restauree_depuis', 'integer')
    .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('versions_fichiers_numero_key', ['fichier_id', 'version_number'])
    .execute()

  await db.schema
    .createTable('stockage_organisations')
    .addColumn('organisation_id', 'uuid', (c) => c.primaryKey().references('organisations.id').onDelete('cascade'))
    .addColumn('stockage_utilise', 'bigint', (c) => c.notNull().defaultTo(0).check(sql`stockage_utilise >= 0`))
    // null: the configured default (STORAGE_QUOTA_BYTES) until a plan sets one.
    .addColumn('quota_octets', 'bigint', (c) => c.check(sql`quota_octets >= 0`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['stockage_organisations', 'versions_fichiers', 'fichiers', 'cles_chiffrement', 'dossiers', 'casiers', 'armoires']) {
    await db.schema.dropTable(table).execute()
  }
}
