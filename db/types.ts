import type {
  JetonsRafraichissementTable,
  OrganisationsTable,
  SessionsTable,
  UtilisateursTable,
} from './tables/security.ts'

/** The whole database as Kysely sees it; each domain's tables live in `db/tables/`. */
export interface DB {
  organisations: OrganisationsTable
  utilisateurs: UtilisateursTable
  sessions: SessionsTable
  jetons_rafraichissement: JetonsRafraichissementTable
}
