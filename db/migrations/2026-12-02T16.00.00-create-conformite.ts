import { type Kysely, sql } from 'kysely'

/*
 * Compliance: locks, retention rules, folder closures, terms a file carries with it, legal
 * holds, disposal reviews and destruction certificates. Rows are never deleted when a lock,
 * rule or hold ends: they are stamped, so what applied at any moment can be shown later.
 * `cible_id` columns have no foreign key: the tree's four tables share them, and the
 * history must outlive a destroyed object.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table verrous (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations(id) on delete cascade,
    cible_type text not null check (cible_type in ('dossier', 'fichier')),
    cible_id uuid not null,
    motif text not null,
    created_by uuid references utilisateurs(id) on delete set null,
    created_at timestamptz not null default now(),
    leve_at timestamptz,
    leve_par uuid references utilisateurs(id) on delete set null,
    motif_levee text
  )`.execute(db)
  await sql`create unique index verrous_actif_key on verrous (cible_type, cible_id) where leve_at is null`.execute(db)
  await sql`create index verrous_organisation_idx on verrous (organisation_id, created_at, id)`.execute(db)

  await sql`create table regles_conservation (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations(id) on delete cascade,
    nom text not null check (char_length(nom) between 1 and 255),
    cible_type text not null check (cible_type in ('armoire', 'casier', 'dossier')),
    cible_id uuid not null,
    duree integer not null check (duree between 1 and 100000),
    unite text not null check (unite in ('jours', 'mois', 'annees')),
    evenement text not null check (evenement in ('creation', 'derniere_modification', 'cloture', 'date')),
    date_depart timestamptz,
    action_terme text not null check (action_terme in ('revue', 'destruction')),
    mode text not null check (mode in ('gouvernance', 'conformite')),
    created_by uuid references utilisateurs(id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    retiree_at timestamptz,
    retiree_par uuid references utilisateurs(id) on delete set null,
    motif_retrait text,
    check ((evenement = 'date') = (date_depart is not null))
  )`.execute(db)
  await sql`create index regles_conservation_cible_idx on regles_conservation (cible_type, cible_id) where retiree_at is null`.execute(db)
  await sql`create index regles_conservation_organisation_idx on regles_conservation (organisation_id, created_at, id)`.execute(db)

  await sql`create table clotures_dossiers (
    dossier_id uuid primary key references dossiers(id) on delete cascade,
    organisation_id uuid not null references organisations(id) on delete cascade,
    cloture_at timestamptz not null default now(),
    cloture_par uuid references utilisateurs(id) on delete set null,
    motif text
  )`.execute(db)

  // Terms a file keeps whatever its place: a rule it was moved out from under, an extension
  // or an indefinite keep decided at review. 'infinity' is a valid term.
  await sql`create table conservations_fichiers (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations(id) on delete cascade,
    fichier_id uuid not null references fichiers(id) on delete cascade,
    regle_id uuid references regles_conservation(id) on delete set null,
    origine text not null check (origine in ('deplacement', 'prolongation', 'conservation')),
    jusqua timestamptz not null,
    action_terme text not null check (action_terme in ('revue', 'destruction')),
    mode text not null check (mode in ('gouvernance', 'conformite')),
    motif text,
    created_by uuid references utilisateurs(id) on delete set null,
    created_at timestamptz not null default now()
  )`.execute(db)
  await sql`create index conservations_fichiers_fichier_idx on conservations_fichiers (fichier_id)`.execute(db)

  await sql`create table gels (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations(id) on delete cascade,
    nom text not null check (char_length(nom) between 1 and 255),
    motif text not null,
    reference text,
    created_by uuid references utilisateurs(id) on delete set null,
    created_at timestamptz not null default now(),
    leve_at timestamptz,
    leve_par uuid references utilisateurs(id) on delete set null,
    motif_levee text
  )`.execute(db)
  await sql`create index gels_organisation_idx on gels (organisation_id, created_at, id)`.execute(db)
  await sql`create table gels_objets (
    gel_id uuid not null references gels(id) on delete cascade,
    organisation_id uuid not null references organisations(id) on delete cascade,
    cible_type text not null check (cible_type in ('armoire', 'casier', 'dossier', 'fichier')),
    cible_id uuid not null,
    origine text not null default 'explicite' check (origine in ('explicite', 'deplacement')),
    added_by uuid references utilisateurs(id) on delete set null,
    added_at timestamptz not null default now(),
    primary key (gel_id, cible_type, cible_id)
  )`.execute(db)
  await sql`create index gels_objets_cible_idx on gels_objets (cible_type, cible_id)`.execute(db)

  await sql`create table certificats_destruction (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations(id) on delete cascade,
    contenu jsonb not null,
    empreinte text not null,
    created_at timestamptz not null default now()
  )`.execute(db)

  // No foreign key to the file: the review outlives its destruction.
  await sql`create table eliminations (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations(id) on delete cascade,
    fichier_id uuid not null,
    fichier_nom text not null,
    regle_id uuid references regles_conservation(id) on delete set null,
    action_terme text not null check (action_terme in ('revue', 'destruction')),
    terme timestamptz not null,
    statut text not null check (statut in ('en_attente', 'planifiee', 'detruite', 'prolongee', 'conservee', 'annulee')),
    destruction_prevue_at timestamptz,
    decision text check (decision in ('approuver', 'prolonger', 'conserver', 'opposer')),
    decide_par uuid references utilisateurs(id) on delete set null,
    decide_at timestamptz,
    motif text,
    certificat_id uuid references certificats_destruction(id),
    created_at timestamptz not null default now()
  )`.execute(db)
  await sql`create unique index eliminations_ouverte_key on eliminations (fichier_id) where statut in ('en_attente', 'planifiee')`.execute(db)
  await sql`create index eliminations_organisation_idx on eliminations (organisation_id, created_at, id)`.execute(db)

  // Every element above an object, the object included: what it inherits rules, locks and holds from.
  await sql`create function conformite_ancetres(p_type text, p_id uuid)
    returns table (cible_type text, cible_id uuid)
    language sql stable
    as $$
      with recursive depart as (
        select 'fichier'::text as t, f.id, f.dossier_id as dossier from fichiers f where p_type = 'fichier' and f.id = p_id
        union all select 'dossier', d.id, d.id from dossiers d where p_type = 'dossier' and d.id = p_id
      ), remontee(id, parent_id, casier_id) as (
        select d.id, d.parent_id, d.casier_id from dossiers d join depart on d.id = depart.dossier
        union all
        select d.id, d.parent_id, d.casier_id from dossiers d join remontee r on d.id = r.parent_id
      ), casier as (
        select c.id, c.armoire_id from casiers c
        where c.id = coalesce((select r.casier_id from remontee r limit 1), case when p_type = 'casier' then p_id end)
      )
      select 'fichier', id from depart where t = 'fichier'
      union all select 'dossier', id from remontee
      union all select 'casier', id from casier
      union all select 'armoire', coalesce((select armoire_id from casier), case when p_type = 'armoire' then p_id end)
        where exists (select 1 from casier) or p_type = 'armoire'
    $$`.execute(db)

  // Every element below an object, the object included, trashed or not.
  await sql`create function conformite_descendants(p_type text, p_id uuid)
    returns table (cible_type text, cible_id uuid)
    language sql stable
    as $$
      with recursive dossiers_sous(id) as (
        select d.id from dossiers d where (p_type = 'dossier' and d.id = p_id)
          or (p_type = 'casier' and d.casier_id = p_id and d.parent_id is null)
          or (p_type = 'armoire' and d.parent_id is null and d.casier_id in (select c.id from casiers c where c.armoire_id = p_id))
        union all
        select d.id from dossiers d join dossiers_sous s on d.parent_id = s.id
      )
      select p_type, p_id where p_type in ('armoire', 'fichier')
      union all select 'casier', c.id from casiers c where (p_type = 'casier' and c.id = p_id) or (p_type = 'armoire' and c.armoire_id = p_id)
      union all select 'dossier', id from dossiers_sous
      union all select 'fichier', f.id from fichiers f where f.dossier_id in (select id from dossiers_sous)
    $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function conformite_descendants(text, uuid)`.execute(db)
  await sql`drop function conformite_ancetres(text, uuid)`.execute(db)
  for (const table of ['eliminations', 'certificats_destruction', 'gels_objets', 'gels', 'conservations_fichiers', 'clotures_dossiers', 'regles_conservation', 'verrous']) {
    await sql`drop table ${sql.table(table)}`.execute(db)
  }
}
