import { type Kysely, sql } from 'kysely'

/**
 * Journal checkpoints: a chain's end (sequence, hash) and when, signed by HMAC-SHA256 under a
 * key the database holds only wrapped by the master key (`cles_journal`), so whoever can write
 * the database can neither cut the chain's newest entries nor recompute it unnoticed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table cles_journal (
    id text primary key,
    organisation_id uuid,
    cle_enveloppee bytea not null,
    version_cle_maitre integer not null,
    created_at timestamptz not null default now()
  )`.execute(db)
  await sql`create table journal_points_controle (
    id bigint primary key generated always as identity,
    organisation_id uuid,
    sequence bigint not null,
    hash bytea not null,
    cle_id text not null references cles_journal (id),
    signature bytea not null,
    created_at timestamptz not null
  )`.execute(db)
  await sql`create index journal_points_controle_chaine_idx on journal_points_controle (organisation_id, sequence desc)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table journal_points_controle`.execute(db)
  await sql`drop table cles_journal`.execute(db)
}
