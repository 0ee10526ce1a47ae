import type {
  AbonnementsHistoriqueTable,
  AbonnementsTable,
  CompteursFacturesTable,
  FacturesPdfTable,
  FacturesTable,
  OrganisationsFacturationTable,
  PaiementsTable,
  PlansTable,
} from './tables/billing.ts'
import type {
  ArmoiresTable,
  CasiersTable,
  ClesChiffrementTable,
  DossiersTable,
  FichiersTable,
  LecturesJournaliseesTable,
  StockageOrganisationsTable,
  VersionsFichiersTable,
} from './tables/documents.ts'
import type { PlanificationsSauvegardeTable, RestaurationsTable, SauvegardesTable } from './tables/backup.ts'
import type {
  CertificatsDestructionTable,
  CloturesDossiersTable,
  ConservationsFichiersTable,
  EliminationsTable,
  ExportsRgpdTable,
  GelsObjetsTable,
  GelsTable,
  ReglesConservationTable,
  VerrousTable,
} from './tables/compliance.ts'
import type { ClesJournalTable, JournalActiviteTable, JournalPointsControleTable, JournalElagagesTable } from './tables/journal.ts'
import type { CourrielsTable } from './tables/mail.ts'
import type {
  CodesSecoursTable,
  FacteursMfaTable,
  IdentitesSsoTable,
  InvitationsTable,
  JetonsRafraichissementTable,
  JetonsUsageUniqueTable,
  OrganisationsTable,
  SessionsTable,
  SsoDomainesTable,
  UtilisateursTable,
} from './tables/security.ts'
import type {
  StatsActiviteJourTable,
  StatsActiviteMembresMoisTable,
  StatsActiviteMembresTable,
  StatsActiviteMoisTable,
  StatsArmoiresTable,
  StatsDeltasTable,
  StatsJournalTable,
  StatsMembresActiviteTable,
  StatsMembresJourTable,
  StatsMembresMoisTable,
  StatsMembresTable,
  StatsOrganisationsTable,
} from './tables/stats.ts'

/** The whole database as Kysely sees it; each domain's tables live in `db/tables/`. */
export interface DB {
  organisations: OrganisationsTable
  utilisateurs: UtilisateursTable
  sessions: SessionsTable
  jetons_rafraichissement: JetonsRafraichissementTable
  journal_activite: JournalActiviteTable
  journal_points_controle: JournalPointsControleTable
  cles_journal: ClesJournalTable
  journal_elagages: JournalElagagesTable
  invitations: InvitationsTable
  facteurs_mfa: FacteursMfaTable
  codes_secours: CodesSecoursTable
  jetons_usage_unique: JetonsUsageUniqueTable
  identites_sso: IdentitesSsoTable
  sso_domaines: SsoDomainesTable
  courriels: CourrielsTable
  armoires: ArmoiresTable
  casiers: CasiersTable
  dossiers: DossiersTable
  fichiers: FichiersTable
  versions_fichiers: VersionsFichiersTable
  cles_chiffrement: ClesChiffrementTable
  stockage_organisations: StockageOrganisationsTable
  plans: PlansTable
  abonnements: AbonnementsTable
  abonnements_historique: AbonnementsHistoriqueTable
  organisations_facturation: OrganisationsFacturationTable
  paiements: PaiementsTable
  compteurs_factures: CompteursFacturesTable
  factures: FacturesTable
  factures_pdf: FacturesPdfTable
  sauvegardes: SauvegardesTable
  restaurations: RestaurationsTable
  planifications_sauvegarde: PlanificationsSauvegardeTable
  verrous: VerrousTable
  regles_conservation: ReglesConservationTable
  clotures_dossiers: CloturesDossiersTable
  conservations_fichiers: ConservationsFichiersTable
  gels: GelsTable
  gels_objets: GelsObjetsTable
  eliminations: EliminationsTable
  exports_rgpd: ExportsRgpdTable
  certificats_destruction: CertificatsDestructionTable
  stats_organisations: StatsOrganisationsTable
  stats_deltas: StatsDeltasTable
  stats_armoires: StatsArmoiresTable
  stats_membres: StatsMembresTable
  stats_activite_jour: StatsActiviteJourTable
  stats_activite_membres: StatsActiviteMembresTable
  stats_membres_jour: StatsMembresJourTable
  stats_activite_mois: StatsActiviteMoisTable
  stats_activite_membres_mois: StatsActiviteMembresMoisTable
  stats_membres_mois: StatsMembresMoisTable
  stats_membres_activite: StatsMembresActiviteTable
  stats_journal: StatsJournalTable
  lectures_journalisees: LecturesJournaliseesTable
}
