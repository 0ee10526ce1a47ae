import { type Kysely, sql } from 'kysely'

/*
 * Billing: plans, one current subscription per organisation (its changes kept in
 * `abonnements_historique`), FeexPay payments, invoices and credit notes.
 * Invoice numbers are gap-free per series and year: allocated from `compteurs_factures`, a row
 * locked in the transaction that confirms the payment, never from a sequence (a rolled-back
 * transaction gives its number back). An issued invoice never changes: a trigger refuses
 * updates and deletes; a correction is a credit note (`avoir`) of its own series.
 */

const GIB = 1024 ** 3

const PLANS = [
  // code, nom, prix mensuel HT, prix annuel HT, stockage, membres, armoires, jours d'essai, rang, fonctionnalités
  ['essai', 'Essai gratuit', 0, 0, 2 * GIB, 3, 3, 14, 0, ['chiffrement', 'versions', 'journal']],
  ['essentiel', 'Essentiel', 10_000, 100_000, 20 * GIB, 5, 10, null, 1, ['chiffrement', 'versions', 'journal', 'sauvegardes']],
  ['professionnel', 'Professionnel', 25_000, 250_000, 100 * GIB, 25, 50, null, 2, ['chiffrement', 'versions', 'journal', 'sauvegardes', 'sso', 'conformite']],
  ['entreprise', 'Entreprise', 75_000, 750_000, 1024 * GIB, 0, 0, null, 3, ['chiffrement', 'versions', 'journal', 'sauvegardes', 'sso', 'conformite', 'support_prioritaire']],
] as const

const STATUTS = `('essai', 'en_attente_paiement', 'actif', 'en_retard', 'suspendu', 'annule', 'expire')`
const PERIODICITES = `('mensuelle', 'annuelle')`

export async function up(db: Kysely<any>): Promise<void> {
  // Mails may attach files by reference (an invoice's PDF), read from their source when sent.
  await db.schema.alterTable('courriels').addColumn('pieces_jointes', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`)).execute()

  await db.schema
    .createTable('plans')
    .addColumn('code', 'text', (c) => c.primaryKey().check(sql`code ~ '^[a-z][a-z0-9_]{1,31}$'`))
    .addColumn('nom', 'text', (c) => c.notNull())
    // Whole XOF, before tax.
    .addColumn('prix_mensuel', 'integer', (c) => c.notNull().check(sql`prix_mensuel >= 0`))
    .addColumn('prix_annuel', 'integer', (c) => c.notNull().check(sql`prix_annuel >= 0`))
    // 0 = unlimited, as STORAGE_QUOTA_BYTES. Storage counts every version, trash included.
    .addColumn('quota_stockage_octets', 'bigint', (c) => c.notNull().check(sql`quota_stockage_octets >= 0`))
    .addColumn('quota_membres', 'integer', (c) => c.notNull().check(sql`quota_membres >= 0`))
    .addColumn('quota_armoires', 'integer', (c) => c.notNull().check(sql`quota_armoires >= 0`))
    .addColumn('essai_jours', 'integer', (c) => c.check(sql`essai_jours > 0`))
    // Higher is bigger: choosing a higher rank is an upgrade.
    .addColumn('rang', 'integer', (c) => c.notNull().unique())
    .addColumn('fonctionnalites', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('actif', 'boolean', (c) => c.notNull().defaultTo(true))
    .execute()
  for (const [code, nom, mensuel, annuel, stockage, membres, armoires, essai, rang, features] of PLANS) {
    await db
      .insertInto('plans')
      .values({
        code,
        nom,
        prix_mensuel: mensuel,
        prix_annuel: annuel,
        quota_stockage_octets: stockage,
        quota_membres: membres,
        quota_armoires: armoires,
        essai_jours: essai,
        rang,
        fonctionnalites: JSON.stringify(features),
      })
      .execute()
  }

  await db.schema
    .createTable('abonnements')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().unique().references('organisations.id').onDelete('cascade'))
    .addColumn('plan_code', 'text', (c) => c.notNull().references('plans.code'))
    .addColumn('periodicite', 'text', (c) => c.notNull().check(sql.raw(`periodicite in ${PERIODICITES}`)))
    .addColumn('statut', 'text', (c) => c.notNull().check(sql.raw(`statut in ${STATUTS}`)))
    .addColumn('periode_debut', 'timestamptz', (c) => c.notNull())
    .addColumn('periode_fin', 'timestamptz', (c) => c.notNull())
    .addColumn('renouvellement_auto', 'boolean', (c) => c.notNull().defaultTo(true))
    // A chosen plan not yet in force: an upgrade waits for its payment, a downgrade for the period's end.
    .addColumn('plan_demande', 'text', (c) => c.references('plans.code'))
    .addColumn('periodicite_demandee', 'text', (c) => c.check(sql.raw(`periodicite_demandee in ${PERIODICITES}`)))
    .addColumn('effet_demande', 'text', (c) => c.check(sql`effet_demande in ('paiement', 'fin_periode')`))
    // When a `fin_periode` change applies: the end of the period it was chosen in (a renewal paid early does not move it).
    .addColumn('changement_at', 'timestamptz')
    .addColumn('en_retard_depuis', 'timestamptz')
    .addColumn('suspendu_depuis', 'timestamptz')
    // Reminders already sent for the current period end, in days before it: not sent twice.
    .addColumn('rappels_envoyes', sql`integer[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('abonnements_periode_check', sql`periode_fin > periode_debut`)
    .addCheckConstraint(
      'abonnements_demande_check',
      sql`(plan_demande is null) = (periodicite_demandee is null) and (plan_demande is null) = (effet_demande is null)`,
    )
    .execute()
  await sql`create index abonnements_echeance_idx on abonnements (periode_fin) where statut in ('essai', 'en_attente_paiement', 'actif', 'en_retard')`.execute(db)

  await db.schema
    .createTable('abonnements_historique')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('abonnement_id', 'uuid', (c) => c.notNull().references('abonnements.id').onDelete('cascade'))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('evenement', 'text', (c) => c.notNull())
    .addColumn('plan_code', 'text', (c) => c.notNull())
    .addColumn('periodicite', 'text', (c) => c.notNull())
    .addColumn('statut', 'text', (c) => c.notNull())
    .addColumn('periode_debut', 'timestamptz', (c) => c.notNull())
    .addColumn('periode_fin', 'timestamptz', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('utilisateur_id', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('abonnements_historique_idx').on('abonnements_historique').columns(['organisation_id', 'id']).execute()

  // Every organisation starts on the trial, those created before billing included.
  await sql`
    create function abonnement_essai() returns trigger language plpgsql as $$
    declare
      jours integer := (select essai_jours from plans where code = 'essai');
      cree uuid;
    begin
      insert into abonnements (organisation_id, plan_code, periodicite, statut, periode_debut, periode_fin)
        values (new.id, 'essai', 'mensuelle', 'essai', now(), now() + make_interval(days => jours))
        returning id into cree;
      insert into abonnements_historique (abonnement_id, organisation_id, evenement, plan_code, periodicite, statut, periode_debut, periode_fin)
        select id, organisation_id, 'essai_demarre', plan_code, periodicite, statut, periode_debut, periode_fin from abonnements where id = cree;
      return new;
    end $$`.execute(db)
  await sql`create trigger organisations_abonnement_essai after insert on organisations for each row execute function abonnement_essai()`.execute(db)
  await sql`
    insert into abonnements (organisation_id, plan_code, periodicite, statut, periode_debut, periode_fin)
    select o.id, 'essai', 'mensuelle', 'essai', now(), now() + make_interval(days => (select essai_jours from plans where code = 'essai'))
    from organisations o`.execute(db)

  await db.schema
    .createTable('organisations_facturation')
    .addColumn('organisation_id', 'uuid', (c) => c.primaryKey().references('organisations.id').onDelete('cascade'))
    .addColumn('raison_sociale', 'text', (c) => c.notNull())
    .addColumn('adresse', 'text', (c) => c.notNull())
    .addColumn('ville', 'text')
    .addColumn('pays', 'text')
    .addColumn('ifu', 'text')
    .addColumn('rccm', 'text')
    .addColumn('email', 'text')
    .addColumn('telephone', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createTable('paiements')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('abonnement_id', 'uuid', (c) => c.notNull().references('abonnements.id').onDelete('cascade'))
    .addColumn('plan_code', 'text', (c) => c.notNull().references('plans.code'))
    .addColumn('periodicite', 'text', (c) => c.notNull().check(sql.raw(`periodicite in ${PERIODICITES}`)))
    // What the payment buys: a first paid period, the next one, or an upgrade now.
    .addColumn('nature', 'text', (c) => c.notNull().check(sql`nature in ('souscription', 'renouvellement', 'changement')`))
    .addColumn('montant', 'integer', (c) => c.notNull().check(sql`montant between 100 and 2000000`))
    .addColumn('montant_ht', 'integer', (c) => c.notNull())
    .addColumn('montant_tva', 'integer', (c) => c.notNull())
    .addColumn('taux_tva', 'numeric(5, 2)', (c) => c.notNull())
    .addColumn('credit_prorata_ht', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('credit_jours', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('devise', 'text', (c) => c.notNull().defaultTo('XOF'))
    .addColumn('moyen', 'text', (c) => c.notNull().check(sql`moyen in ('mobile_money', 'carte')`))
    .addColumn('reseau', 'text')
    .addColumn('telephone', 'text')
    .addColumn('statut', 'text', (c) => c.notNull().defaultTo('en_attente').check(sql`statut in ('en_attente', 'reussi', 'echoue', 'expire')`))
    .addColumn('reference', 'text', (c) => c.unique())
    .addColumn('payment_url', 'text')
    .addColumn('statut_fournisseur', 'text')
    .addColumn('raison', 'text')
    .addColumn('verifications', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('verifie_at', 'timestamptz')
    .addColumn('expire_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_by', 'uuid', (c) => c.references('utilisateurs.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finalise_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('paiements_organisation_idx').on('paiements').columns(['organisation_id', 'created_at', 'id']).execute()
  await sql`create index paiements_en_attente_idx on paiements (created_at) where statut = 'en_attente'`.execute(db)

  await db.schema
    .createTable('compteurs_factures')
    .addColumn('serie', 'text', (c) => c.notNull().check(sql`serie in ('FAC', 'AV')`))
    .addColumn('annee', 'integer', (c) => c.notNull())
    .addColumn('dernier', 'integer', (c) => c.notNull().check(sql`dernier >= 0`))
    .addPrimaryKeyConstraint('compteurs_factures_pkey', ['serie', 'annee'])
    .execute()

  await db.schema
    .createTable('factures')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('restrict'))
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('facture', 'avoir')`))
    .addColumn('serie', 'text', (c) => c.notNull())
    .addColumn('annee', 'integer', (c) => c.notNull())
    .addColumn('rang', 'integer', (c) => c.notNull().check(sql`rang >= 1`))
    .addColumn('numero', 'text', (c) => c.notNull().unique())
    // One invoice per payment: a second confirmation of the same payment cannot bill twice.
    .addColumn('paiement_id', 'uuid', (c) => c.unique().references('paiements.id').onDelete('restrict'))
    .addColumn('facture_origine_id', 'uuid', (c) => c.references('factures.id').onDelete('restrict'))
    .addColumn('motif', 'text')
    .addColumn('vendeur', 'jsonb', (c) => c.notNull())
    .addColumn('acheteur', 'jsonb', (c) => c.notNull())
    .addColumn('lignes', 'jsonb', (c) => c.notNull())
    .addColumn('montant_ht', 'integer', (c) => c.notNull())
    .addColumn('taux_tva', 'numeric(5, 2)', (c) => c.notNull())
    .addColumn('montant_tva', 'integer', (c) => c.notNull())
    .addColumn('montant_ttc', 'integer', (c) => c.notNull())
    .addColumn('devise', 'text', (c) => c.notNull())
    .addColumn('reference_paiement', 'text')
    .addColumn('periode_debut', 'timestamptz')
    .addColumn('periode_fin', 'timestamptz')
    .addColumn('emise_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('factures_serie_rang_key', ['serie', 'annee', 'rang'])
    .addCheckConstraint('factures_montants_check', sql`montant_ttc = montant_ht + montant_tva`)
    .addCheckConstraint(
      'factures_serie_check',
      sql`(type = 'facture' and serie = 'FAC' and paiement_id is not null and facture_origine_id is null)
       or (type = 'avoir' and serie = 'AV' and facture_origine_id is not null and motif is not null)`,
    )
    .execute()
  await db.schema.createIndex('factures_organisation_idx').on('factures').columns(['organisation_id', 'emise_at', 'id']).execute()
  await sql`
    create function factures_immuables() returns trigger language plpgsql as $$
    begin
      raise exception 'la facture % est émise : elle ne peut être ni modifiée ni supprimée (établir un avoir)', old.numero
        using errcode = 'check_violation';
    end $$`.execute(db)
  await sql`create trigger factures_immuables before update or delete on factures for each row execute function factures_immuables()`.execute(db)
  // The rendered PDF, encrypted like a document's version; apart from the invoice so that
  // rotating the master key can re-wrap its key without touching the immutable row.
  await db.schema
    .createTable('factures_pdf')
    .addColumn('facture_id', 'uuid', (c) => c.primaryKey().references('factures.id').onDelete('restrict'))
    .addColumn('organisation_id', 'uuid', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('sha256', 'text', (c) => c.notNull().check(sql`sha256 ~ '^[0-9a-f]{64}$'`))
    .addColumn('taille', 'integer', (c) => c.notNull())
    .addColumn('blob', 'text', (c) => c.notNull().unique())
    .addColumn('cle_enveloppee', 'bytea', (c) => c.notNull())
    .addColumn('version_cle_maitre', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('reenveloppee_at', 'timestamptz')
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['factures_pdf', 'factures', 'compteurs_factures', 'paiements', 'organisations_facturation']) {
    await db.schema.dropTable(table).execute()
  }
  await sql`drop trigger organisations_abonnement_essai on organisations`.execute(db)
  await sql`drop function abonnement_essai()`.execute(db)
  await sql`drop function factures_immuables()`.execute(db)
  for (const table of ['abonnements_historique', 'abonnements', 'plans']) await db.schema.dropTable(table).execute()
  await db.schema.alterTable('courriels').dropColumn('pieces_jointes').execute()
}
