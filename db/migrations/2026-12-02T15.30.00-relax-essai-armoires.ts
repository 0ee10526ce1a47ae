import { type Kysely, sql } from 'kysely'

// The trial lets an organisation try the whole tree: no armoire count limit (storage and members stay bounded).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`update plans set quota_armoires = 0 where code = 'essai'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`update plans set quota_armoires = 3 where code = 'essai'`.execute(db)
}
