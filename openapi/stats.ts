import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, Nullable, RoleSchema, StringEnum, TimestampSchema } from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation } from './operation.ts'
import { JournalEntrySchema } from './security.ts'

export const GRANULARITES = ['jour', 'semaine', 'mois'] as const
export type Granularite = (typeof GRANULARITES)[number]

const DateSchema = Type.String({ format: 'date', description: 'Jour civil AAAA-MM-JJ, dans le fuseau horaire de l’organisation' })

export const PeriodQuerySchema = Type.Object({
  du: Type.Optional(Type.String({ format: 'date', description: 'Premier jour inclus (défaut : 29 jours avant `au`)' })),
  au: Type.Optional(Type.String({ format: 'date', description: 'Dernier jour inclus (défaut : aujourd’hui)' })),
  granularite: StringEnum(GRANULARITES, { default: 'jour', description: 'Regroupement des séries' }),
})

const PeriodSchema = Type.Object(
  {
    du: DateSchema,
    au: DateSchema,
    granularite: StringEnum(GRANULARITES),
    fuseau_horaire: Type.String({ description: 'Fuseau IANA des jours, ex. Africa/Porto-Novo' }),
    precedente: Type.Object({ du: DateSchema, au: DateSchema }, { description: 'Période de même durée juste avant, pour la croissance' }),
  },
  { description: 'La période couverte' },
)

const Count = (description: string) => Type.Integer({ minimum: 0, description })
const Bytes = (description: string) => Type.Integer({ minimum: 0, description: `${description} (octets)` })

export const METRICS = ['depots', 'nouvelles_versions', 'telechargements', 'suppressions', 'restaurations', 'connexions', 'connexions_echouees'] as const
export type Metric = (typeof METRICS)[number]

const metricObject = <T extends TSchema>(make: (m: Metric) => T) =>
  Type.Object(Object.fromEntries(METRICS.map((m) => [m, make(m)])) as Record<Metric, T>)

const BucketSchema = Type.Object({
  debut: DateSchema,
  fin: DateSchema,
})

const ActivitySchema = Type.Object(
  {
    series: Type.Array(Type.Composite([BucketSchema, metricObject(() => Type.Integer({ minimum: 0 }))]), {
      description: 'Un point par jour, semaine (lundi–dimanche) ou mois, bornés à la période',
    }),
    totaux: metricObject(() => Type.Integer({ minimum: 0 })),
    periode_precedente: metricObject(() => Type.Integer({ minimum: 0 })),
    croissance: metricObject(() =>
      Nullable(Type.Number({ description: 'Variation en % par rapport à la période précédente ; null si elle était à zéro' })),
    ),
    membres_les_plus_actifs: Type.Array(
      Type.Object({ id: IdSchema, nom: Nullable(Type.String()), email: Nullable(Type.String()), actions: Count('Entrées du journal sur la période') }),
      { maxItems: 5 },
    ),
  },
  { description: 'Dépôts, nouvelles versions, téléchargements, suppressions, restaurations, connexions et échecs' },
)

export const GlobalDashboardSchema = Type.Object(
  {
    genere_le: TimestampSchema,
    periode: PeriodSchema,
    comptes: Type.Object({
      armoires: Count('Armoires en service'),
      casiers: Count('Casiers en service'),
      dossiers: Count('Dossiers en service'),
      fichiers: Count('Fichiers en service'),
      versions: Count('Versions conservées, corbeille comprise'),
      elements_corbeille: Count('Éléments dans la corbeille (supprimés eux-mêmes)'),
      fichiers_corbeille: Count('Fichiers dans la corbeille, seuls ou avec leur conteneur'),
    }),
    membres: Type.Object({
      total: Count('Membres'),
      par_role: Type.Object({ admin: Count('Administrateurs'), contributeur: Count('Contributeurs'), lecteur: Count('Lecteurs') }),
      par_statut: Type.Object({
        actifs_30_jours: Count('Comptes actifs ayant agi dans les 30 derniers jours'),
        inactifs: Count('Comptes actifs sans activité depuis 30 jours'),
        invites: Count('Invités n’ayant pas encore rejoint'),
        desactives: Count('Comptes désactivés'),
      }),
    }),
    stockage: Type.Object({
      versions_courantes: Bytes('Version courante des fichiers en service'),
      versions_anciennes: Bytes('Versions antérieures des fichiers en service'),
      corbeille: Bytes('Toutes les versions des fichiers dans la corbeille'),
      sauvegardes: Type.Optional(Bytes('Archives de sauvegarde terminées ou en cours')),
      total: Bytes('Total compté dans le quota'),
      quota: Nullable(Bytes('Quota de stockage de l’offre souscrite ; null : illimité')),
      pourcentage_quota: Nullable(Type.Number({ description: 'Part du quota utilisée, en %' })),
      plus_grandes_armoires: Type.Array(
        Type.Object({ id: IdSchema, nom: Type.String(), fichiers: Count('Fichiers en service'), octets: Bytes('Toutes versions') }),
        { maxItems: 5 },
      ),
    }),
    activite: ActivitySchema,
    securite: Type.Object({
      membres_avec_2fa: Count('Comptes actifs avec un second facteur'),
      part_2fa: Nullable(Type.Number({ description: 'Part des comptes actifs avec un second facteur, en % ; null sans compte actif' })),
      connexions_echouees_7_jours: Count('Connexions échouées ou refusées, 7 derniers jours'),
      comptes_bloques_7_jours: Count('Comptes bloqués au moins une fois, 7 derniers jours'),
      comptes_bloques: Count('Comptes bloqués en ce moment'),
      sessions_actives: Count('Sessions ni expirées ni révoquées'),
      derniere_verification_journal: Nullable(
        Type.Object({ verifie_le: TimestampSchema, intact: Type.Boolean(), entrees: Nullable(Type.Integer()) }, { description: 'Dernier `GET /journal/verification`' }),
      ),
    }),
    sauvegardes: Type.Optional(
      Type.Object(
        {
          octets: Bytes('Archives terminées ou en cours'),
          echecs_30_jours: Count('Sauvegardes échouées depuis 30 jours'),
          cibles: Type.Array(
            Type.Object({
              type: StringEnum(['fichier', 'dossier', 'casier', 'armoire', 'systeme'] as const),
              cible_id: Nullable(IdSchema),
              derniere_reussie: Nullable(TimestampSchema),
              derniere_verifiee: Nullable(TimestampSchema),
              echecs: Count('Sauvegardes échouées de cette cible'),
            }),
            { description: 'Par cible sauvegardée : dernière réussite, dernière vérification, échecs' },
          ),
        },
        { description: 'Présent quand le domaine des sauvegardes est installé' },
      ),
    ),
    abonnement: Type.Optional(
      Type.Object(
        {
          plan: Type.String({ description: 'Code de l’offre' }),
          nom: Type.String(),
          statut: Type.String({ description: 'essai, en_attente_paiement, actif, en_retard, suspendu, annule ou expire' }),
          periode_fin: TimestampSchema,
          jours_restants: Count('Jours avant la fin de la période en cours'),
        },
        { description: 'Présent quand le domaine de la facturation est installé' },
      ),
    ),
    conformite: Type.Optional(
      Type.Object(
        {
          regles_actives: Count('Règles de conservation en vigueur (non retirées)'),
          objets_sous_conservation: Count(
            'Objets que nomme une règle en vigueur, et fichiers portant un terme propre en cours (déplacés hors d’une règle, prolongés, conservés) ; ce qui est rangé dessous n’est pas recompté',
          ),
          gels_actifs: Count('Gels juridiques non levés'),
          objets_sous_gel: Count('Objets que nomme un gel non levé ; ce qui est rangé dessous est gelé aussi, sans être recompté'),
          eliminations_dues: Count('Éliminations ouvertes : en revue et destructions planifiées'),
          eliminations_en_revue: Count('Fichiers arrivés à terme qui attendent une décision (POST /conformite/eliminations/{id}/decision)'),
          destructions_planifiees: Count('Destructions programmées à la fin de leur préavis, encore opposables'),
        },
        { description: 'Présent quand le domaine de la conformité est installé' },
      ),
    ),
  },
  { $id: 'TableauDeBordGlobal', description: 'L’organisation en un coup d’œil' },
)
export type GlobalDashboardDto = Static<typeof GlobalDashboardSchema>

export const UserDashboardQuerySchema = Type.Composite([
  PeriodQuerySchema,
  Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Entrées récentes du journal par page' }),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: 'Curseur de la page suivante des entrées récentes' })),
  }),
])

export const UserDashboardSchema = Type.Object(
  {
    genere_le: TimestampSchema,
    periode: PeriodSchema,
    membre: Type.Object({ id: IdSchema, nom: Type.String(), email: Type.String(), role: RoleSchema, actif: Type.Boolean() }),
    actions: Type.Array(Type.Object({ action: Type.String({ description: 'Code d’action du journal' }), nombre: Count('Sur la période') }), {
      description: 'Par type, du plus fréquent au plus rare',
    }),
    series: Type.Array(
      Type.Composite([BucketSchema, Type.Object({ actions: Type.Record(Type.String(), Type.Integer({ minimum: 0 })) })]),
      { description: 'Un point par jour, semaine ou mois : le nombre d’entrées par code d’action' },
    ),
    derniere_connexion: Nullable(TimestampSchema),
    derniere_activite: Nullable(TimestampSchema),
    depots: Type.Object({
      fichiers: Count('Nouveaux fichiers déposés sur la période'),
      versions: Count('Nouvelles versions déposées sur la période'),
      octets: Bytes('Déposés sur la période'),
    }),
    stockage_contribue: Type.Object({ versions: Count('Versions déposées encore conservées'), octets: Bytes('Qu’elles occupent') }),
    sessions_actives: Count('Sessions ni expirées ni révoquées'),
    double_authentification: Type.Boolean({ description: 'Un second facteur est actif' }),
    journal: Type.Object({
      items: Type.Array(JournalEntrySchema),
      next_cursor: Nullable(Type.String({ description: 'null sur la dernière page' })),
      lien: Type.String({ description: 'Le journal complet du membre : `GET /journal?utilisateur_id=…`' }),
    }),
  },
  { $id: 'TableauDeBordUtilisateur', description: 'L’activité d’un membre' },
)
export type UserDashboardDto = Static<typeof UserDashboardSchema>

const EXPORTS =
  'Selon `Accept` : JSON (défaut), `text/csv` (une série par ligne, en-têtes en français, séparateur `;`, UTF-8 avec BOM) ' +
  'ou `application/pdf` (rapport d’une page).'

const answers = (schema: TSchema, description: string) => ({
  description,
  content: {
    'application/json': { schema },
    'text/csv': { schema: { type: 'string' } },
    'application/pdf': { schema: { type: 'string', format: 'binary' } },
  },
})

// Examples
const metrics = (values: readonly number[]) => Object.fromEntries(METRICS.map((m, i) => [m, values[i] ?? 0])) as Record<Metric, number>
const EXEMPLE_PERIODE = {
  du: '2026-03-01',
  au: '2026-03-07',
  granularite: 'jour',
  fuseau_horaire: 'Europe/Paris',
  precedente: { du: '2026-02-22', au: '2026-02-28' },
} as const
const EXEMPLE_GLOBAL: GlobalDashboardDto = {
  genere_le: '2026-03-07T18:00:00.000Z',
  periode: EXEMPLE_PERIODE,
  comptes: { armoires: 4, casiers: 11, dossiers: 58, fichiers: 1240, versions: 1502, elements_corbeille: 6, fichiers_corbeille: 19 },
  membres: { total: 9, par_role: { admin: 2, contributeur: 5, lecteur: 2 }, par_statut: { actifs_30_jours: 7, inactifs: 1, invites: 1, desactives: 0 } },
  stockage: {
    versions_courantes: 812000000,
    versions_anciennes: 96500000,
    corbeille: 12400000,
    total: 920900000,
    quota: 10737418240,
    pourcentage_quota: 8.58,
    plus_grandes_armoires: [{ id: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', nom: 'Ressources humaines', fichiers: 640, octets: 501000000 }],
  },
  activite: {
    series: [{ debut: '2026-03-07', fin: '2026-03-07', ...metrics([12, 3, 40, 1, 0, 9, 1]) }],
    totaux: metrics([85, 17, 301, 6, 2, 61, 4]),
    periode_precedente: metrics([70, 20, 250, 3, 0, 58, 9]),
    croissance: { ...metrics([21.43, -15, 20.4, 100, 0, 5.17, -55.56]), restaurations: null },
    membres_les_plus_actifs: [{ id: '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a', nom: 'Claire Martin', email: 'claire.martin@cabinet-dupont.fr', actions: 142 }],
  },
  securite: {
    membres_avec_2fa: 6,
    part_2fa: 75,
    connexions_echouees_7_jours: 4,
    comptes_bloques_7_jours: 0,
    comptes_bloques: 0,
    sessions_actives: 12,
    derniere_verification_journal: { verifie_le: '2026-03-07T08:00:00.000Z', intact: true, entrees: 18211 },
  },
  conformite: {
    regles_actives: 3,
    objets_sous_conservation: 4,
    gels_actifs: 1,
    objets_sous_gel: 2,
    eliminations_dues: 5,
    eliminations_en_revue: 4,
    destructions_planifiees: 1,
  },
}
const EXEMPLE_MEMBRE: UserDashboardDto = {
  genere_le: '2026-03-07T18:00:00.000Z',
  periode: EXEMPLE_PERIODE,
  membre: { id: '7a1e5c3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c', nom: 'Julien Petit', email: 'julien.petit@cabinet-dupont.fr', role: 'contributeur', actif: true },
  actions: [
    { action: 'FILE_DOWNLOADED', nombre: 31 },
    { action: 'FILE_UPLOADED', nombre: 12 },
  ],
  series: [{ debut: '2026-03-07', fin: '2026-03-07', actions: { FILE_DOWNLOADED: 5, FILE_UPLOADED: 2 } }],
  derniere_connexion: '2026-03-07T08:12:00.000Z',
  derniere_activite: '2026-03-07T16:45:10.000Z',
  depots: { fichiers: 12, versions: 3, octets: 5400000 },
  stockage_contribue: { versions: 210, octets: 98000000 },
  sessions_actives: 2,
  double_authentification: true,
  journal: { items: [], next_cursor: null, lien: '/journal?utilisateur_id=7a1e5c3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c' },
}

export const getGlobalDashboard = defineOperation({
  method: 'GET',
  url: '/dashboard/global',
  operationId: 'getGlobalDashboard',
  tags: ['tableaux-de-bord'],
  summary: 'Tableau de bord de l’organisation',
  description:
    'Comptes, membres, stockage face au quota, activité par jour, semaine ou mois avec la croissance, membres les plus actifs, ' +
    'sécurité, sauvegardes, abonnement, conformité (conservation, gels juridiques, éliminations dues). Calculé à partir de compteurs tenus à jour par les transactions, exacts dès leur validation. ' +
    EXPORTS,
  access: { roles: ADMINS },
  schema: { querystring: PeriodQuerySchema, response: { 200: answers(GlobalDashboardSchema, 'Le tableau de bord') } },
  request: { querystring: { du: '2026-03-01', au: '2026-03-07', granularite: 'jour' } },
  responses: { 200: { example: EXEMPLE_GLOBAL } },
})

export const getUserDashboard = defineOperation({
  method: 'GET',
  url: '/dashboard/utilisateur/:id',
  operationId: 'getUserDashboard',
  tags: ['tableaux-de-bord'],
  summary: 'Activité d’un membre',
  description: 
    'Rend l’activité d’un membre sur une période : ses actions par type et dans le temps, ses dépôts, le stockage ' +
    'qu’il occupe, ses sessions et ses dernières entrées du journal. Pour un administrateur, ou pour le membre ' +
    'lui-même. Un membre d’une autre organisation répond 404. Selon `Accept` : JSON (défaut), `text/csv` (une ' +
    'série par ligne, en-têtes en français, séparateur `;`, UTF-8 avec BOM) ou `application/pdf` (rapport d’une ' +
    'page).',
  access: { roles: ALL_ROLES },
  schema: { params: IdParamsSchema, querystring: UserDashboardQuerySchema, response: { 200: answers(UserDashboardSchema, 'Le tableau de bord du membre') } },
  request: { params: { id: '7a1e5c3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c' }, querystring: { du: '2026-03-01', au: '2026-03-07' } },
  responses: { 200: { example: EXEMPLE_MEMBRE } },
})

export const SettingsSchema = Type.Object(
  { fuseau_horaire: Type.String({ minLength: 1, maxLength: 64, description: 'Fuseau IANA des jours des statistiques, ex. Europe/Paris' }) },
  { $id: 'ParametresStatistiques' },
)

export const putDashboardSettings = defineOperation({
  method: 'PUT',
  url: '/dashboard/parametres',
  operationId: 'putDashboardSettings',
  tags: ['tableaux-de-bord'],
  summary: 'Choisir le fuseau horaire des statistiques',
  description: 
    'Choisit le fuseau horaire (IANA) dans lequel les statistiques comptent les jours, semaines et mois ; les ' +
    'jours de l’activité sont recalculés depuis le journal dans le nouveau fuseau. Réservé aux administrateurs.',
  access: { roles: ADMINS },
  schema: { body: SettingsSchema, response: { 200: SettingsSchema } },
  request: { body: { fuseau_horaire: 'Africa/Porto-Novo' } },
  responses: { 200: { description: 'Fuseau enregistré', example: { fuseau_horaire: 'Africa/Porto-Novo' } } },
})

export const statsOperations = [getGlobalDashboard, getUserDashboard, putDashboardSettings]
