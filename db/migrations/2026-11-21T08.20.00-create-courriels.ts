import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // The outbox of transactional e-mail: a row is written in the transaction of the action that
  // causes the mail, so a rolled-back action leaves nothing to send.
  await db.schema
    .createTable('courriels')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organisation_id', 'uuid', (c) => c.references('organisations.id').onDelete('cascade'))
    .addColumn('destinataire', 'text', (c) => c.notNull())
    .addColumn('sujet', 'text', (c) => c.notNull())
    .addColumn('texte', 'text', (c) => c.notNull())
    .addColumn('html', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('statut', 'text', (c) =>
      c.notNull().defaultTo('en_attente').check(sql`statut in ('en_attente', 'envoye', 'echec', 'non_envoye')`),
    )
    .addColumn('tentatives', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('derniere_erreur', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('courriels_organisation_idx').on('courriels').columns(['organisation_id', 'created_at']).execute()
  await sql`create index courriels_a_traiter_idx on courriels (created_at) where statut in ('en_attente', 'echec')`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('courriels').execute()
}
