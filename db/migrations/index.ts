import type { Migration } from 'kysely/migration'
import * as m001 from './2026-11-21T08.00.00-create-organisations-users-sessions.ts'
import * as m002 from './2026-11-21T08.10.00-create-journal-activite.ts'
import * as m003 from './2026-11-21T08.20.00-create-courriels.ts'
import * as m004 from './2026-11-21T08.30.00-create-invitations.ts'
import * as m005 from './2026-11-21T09.00.00-create-documents.ts'
import * as m006 from './2026-11-21T09.30.00-add-mfa-passwords-sso.ts'
import * as m007 from './2026-11-21T11.30.00-add-journal-append.ts'
import * as m013a from './2026-12-02T13.00.00-create-lectures-journalisees.ts'
import * as m013b from './2026-12-02T13.20.00-add-journal-scheme-jcs.ts'
import * as m013c from './2026-12-02T13.30.00-create-journal-points-controle.ts'
import * as m014 from './2026-12-02T14.00.00-create-sauvegardes.ts'
import * as m014b from './2026-12-02T14.30.00-add-restaurations-battement-planifications.ts'
import * as m015 from './2026-12-02T15.00.00-create-billing.ts'
import * as m015b from './2026-12-02T15.30.00-relax-essai-armoires.ts'
import * as m016a from './2026-12-02T16.00.00-create-conformite.ts'
import * as m016b from './2026-12-02T16.10.00-protect-journal-activite.ts'
import * as m017a from './2026-12-02T17.00.00-create-statistiques.ts'
import * as m018a from './2026-12-04T01.30.00-create-exports-rgpd.ts'
import * as m018b from './2026-12-04T01.40.00-index-conformite-par-organisation.ts'
import * as m019a from './2026-12-07T23.30.00-create-stats-mois.ts'

/** Every migration, in order. Names are frozen once released. */
export const migrations: Record<string, Migration> = {
  '2026-11-21T08.00.00-create-organisations-users-sessions': m001,
  '2026-11-21T08.10.00-create-journal-activite': m002,
  '2026-11-21T08.20.00-create-courriels': m003,
  '2026-11-21T08.30.00-create-invitations': m004,
  '2026-11-21T09.00.00-create-documents': m005,
  '2026-11-21T09.30.00-add-mfa-passwords-sso': m006,
  '2026-11-21T11.30.00-add-journal-append': m007,
  '2026-12-02T13.00.00-create-lectures-journalisees': m013a,
  '2026-12-02T13.20.00-add-journal-scheme-jcs': m013b,
  '2026-12-02T13.30.00-create-journal-points-controle': m013c,
  '2026-12-02T14.00.00-create-sauvegardes': m014,
  '2026-12-02T14.30.00-add-restaurations-battement-planifications': m014b,
  '2026-12-02T15.00.00-create-billing': m015,
  '2026-12-02T15.30.00-relax-essai-armoires': m015b,
  '2026-12-02T16.00.00-create-conformite': m016a,
  '2026-12-02T16.10.00-protect-journal-activite': m016b,
  '2026-12-02T17.00.00-create-statistiques': m017a,
  '2026-12-04T01.30.00-create-exports-rgpd': m018a,
  '2026-12-04T01.40.00-index-conformite-par-organisation': m018b,
  '2026-12-07T23.30.00-create-stats-mois': m019a,
}
