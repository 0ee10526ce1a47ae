import { type Kysely, sql } from 'kysely'

// The dashboard counts an organisation's carried terms and open disposals: by the organisation,
// not over every organisation's rows (open disposals only: decided ones pile up forever).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index conservations_fichiers_organisation_idx on conservations_fichiers (organisation_id, jusqua)`.execute(db)
  await sql`create index eliminations_ouvertes_idx on eliminations (organisation_id, statut) where statut in ('en_attente', 'planifiee')`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index eliminations_ouvertes_idx`.execute(db)
  await sql`drop index conservations_fichiers_organisation_idx`.execute(db)
}
