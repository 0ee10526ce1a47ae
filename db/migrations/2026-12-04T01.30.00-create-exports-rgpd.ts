import { type Kysely, sql } from 'kysely'

/*
 * GDPR exports too large to answer at once: built by a job into an encrypted blob under a
 * data key of their own (wrapped by the master key, on the row), downloadable until they expire.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table exports_rgpd (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations(id) on delete cascade,
    utilisateur_id uuid not null references utilisateurs(id) on delete cascade,
    demande_par uuid references utilisateurs(id) on delete set null,
    statut text not null default 'en_attente' check (statut in ('en_attente', 'en_cours', 'terminee', 'echec', 'expiree')),
    elements integer not null check (elements >= 0),
    blob text,
    cle_enveloppee bytea,
    version_cle_maitre integer,
    taille bigint check (taille >= 0),
    sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
    erreur jsonb,
    created_at timestamptz not null default now(),
    terminee_le timestamptz,
    expire_le timestamptz,
    constraint exports_rgpd_terminee_check check (statut <> 'terminee' or (blob is not null and cle_enveloppee is not null and taille is not null and sha256 is not null and expire_le is not null))
  )`.execute(db)
  await sql`create index exports_rgpd_utilisateur_idx on exports_rgpd (organisation_id, utilisateur_id, created_at desc)`.execute(db)
  await sql`create index exports_rgpd_expire_idx on exports_rgpd (expire_le) where statut = 'terminee'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table exports_rgpd`.execute(db)
}
