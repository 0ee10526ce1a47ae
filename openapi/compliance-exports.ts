import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, Nullable, StringEnum, TimestampSchema } from './common.ts'
import { ADMINS, ALL_ROLES, defineOperation } from './operation.ts'

const zip = (description: string) => ({
  description,
  content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
})

const EXEMPLE_UTILISATEUR = '3f6c2a9e-8b1d-4c7a-a2e5-9d0f1b3c5e7a'
const EXPORT_CONTENT =
  'Une archive ZIP de JSON lisibles par une machine : `compte.json` (le compte et son organisation), `sessions.json`, ' +
  '`facteurs.json` (seconds facteurs, sans leurs secrets ; codes de secours comptés, identités SSO), `journal.json` ' +
  '(les entrées du journal faites par la personne ou la concernant, avec leurs hashs chaînés) et `fichiers.json` ' +
  '(les fichiers et versions qu’elle a créés, en métadonnées). L’export est journalisé.'

const EXPORT_ID = '7b1c9e4d-2a3f-4b5c-8d6e-0f1a2b3c4d5e'
const DEFERRED =
  'Quand la personne a plus d’entrées de journal et de fichiers que le seuil de la configuration ' +
  '(`GDPR_EXPORT_JOB_THRESHOLD`), l’archive est construite par un travail en arrière-plan : la réponse est alors ' +
  '202 avec l’export `en_attente` (en-tête `Location`), à suivre par GET /conformite/exports/{id} puis à télécharger ' +
  'par GET /conformite/exports/{id}/archive. Une demande pendant qu’un export de la même personne, demandé par le ' +
  'même membre, est encore en attente ou en cours répond cet export.'

export const ExportRgpdSchema = Type.Object(
  {
    id: IdSchema,
    utilisateur_id: IdSchema,
    demande_par: Nullable(IdSchema),
    statut: StringEnum(['en_attente', 'en_cours', 'terminee', 'echec', 'expiree'], {
      description: '`expiree` : l’archive a été détruite à son échéance (`expire_le`), demandez-en une nouvelle',
    }),
    elements: Type.Integer({ minimum: 0, description: 'Entrées de journal et fichiers de la personne au moment de la demande' }),
    taille: Nullable(Type.Integer({ minimum: 0, description: 'Taille de l’archive ZIP, en octets' })),
    sha256: Nullable(Type.String({ description: 'SHA-256 de l’archive ZIP (en clair)' })),
    erreur: Nullable(Type.Object({ code: Type.String(), detail: Type.String() })),
    created_at: TimestampSchema,
    terminee_le: Nullable(TimestampSchema),
    expire_le: Nullable(Type.String({ format: 'date-time', description: 'Jusqu’à quand l’archive se télécharge' })),
  },
  { $id: 'ExportRgpd', description: 'Un export RGPD construit en arrière-plan' },
)
export type ExportRgpdDto = Static<typeof ExportRgpdSchema>

const EXEMPLE_EXPORT: ExportRgpdDto = {
  id: EXPORT_ID,
  utilisateur_id: EXEMPLE_UTILISATEUR,
  demande_par: EXEMPLE_UTILISATEUR,
  statut: 'en_attente',
  elements: 12840,
  taille: null,
  sha256: null,
  erreur: null,
  created_at: '2026-03-04T09:00:00.000Z',
  terminee_le: null,
  expire_le: null,
}

const DEFERRED_ANSWER = 'Export volumineux : construit en arrière-plan (`Location` : GET /conformite/exports/{id})'

export const exportMe = defineOperation({
  method: 'GET',
  url: '/me/export',
  operationId: 'exportMe',
  tags: ['conformite'],
  summary: 'Exporter mes données personnelles (RGPD, droit d’accès et à la portabilité)',
  description: `Tout membre obtient ses propres données. ${EXPORT_CONTENT} ${DEFERRED}`,
  access: { roles: ALL_ROLES },
  responses: { 200: { description: 'L’archive de vos données' }, 202: { description: DEFERRED_ANSWER, example: EXEMPLE_EXPORT } },
  schema: { response: { 200: zip('L’archive ZIP'), 202: ExportRgpdSchema } },
})

export const exportUser = defineOperation({
  method: 'GET',
  url: '/users/:id/export',
  operationId: 'exportUser',
  tags: ['conformite'],
  summary: 'Exporter les données personnelles d’un membre (RGPD)',
  description: `Réservé aux administrateurs, pour répondre à une demande d’accès. ${EXPORT_CONTENT} ${DEFERRED}`,
  access: { roles: ADMINS },
  request: { params: { id: EXEMPLE_UTILISATEUR } },
  responses: { 200: { description: 'L’archive des données du membre' }, 202: { description: DEFERRED_ANSWER, example: EXEMPLE_EXPORT } },
  schema: { params: IdParamsSchema, response: { 200: zip('L’archive ZIP'), 202: ExportRgpdSchema } },
})

const EXPORT_ACCESS = 'Visible du membre qui l’a demandé et des administrateurs de l’organisation ; 404 pour tout autre.'

export const getExportRgpd = defineOperation({
  method: 'GET',
  url: '/conformite/exports/:id',
  operationId: 'getExportRgpd',
  tags: ['conformite'],
  summary: 'Suivre un export RGPD construit en arrière-plan',
  description: `Rend l’export et son statut, à interroger jusqu’à \`terminee\` ou \`echec\`. ${EXPORT_ACCESS}`,
  access: { roles: ALL_ROLES },
  request: { params: { id: EXPORT_ID } },
  responses: { 200: { description: 'L’export', example: { ...EXEMPLE_EXPORT, statut: 'terminee', taille: 48213, sha256: 'b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c', terminee_le: '2026-03-04T09:00:07.000Z', expire_le: '2026-03-11T09:00:07.000Z' } } },
  schema: { params: IdParamsSchema, response: { 200: ExportRgpdSchema } },
})

export const downloadExportRgpd = defineOperation({
  method: 'GET',
  url: '/conformite/exports/:id/archive',
  operationId: 'downloadExportRgpd',
  tags: ['conformite'],
  summary: 'Télécharger l’archive d’un export RGPD terminé',
  description: `L’archive ZIP, stockée chiffrée et déchiffrée au fil de l’envoi ; chaque téléchargement est journalisé. ${EXPORT_ACCESS}`,
  access: { roles: ALL_ROLES },
  problems: ['EXPORT_NOT_READY', 'INTEGRITY_ERROR'],
  request: { params: { id: EXPORT_ID } },
  schema: { params: IdParamsSchema, response: { 200: zip('L’archive ZIP') } },
})

export const EffacementSchema = Type.Object(
  {
    utilisateur_id: IdSchema,
    statut: Type.Unsafe<'complet' | 'partiel'>({
      type: 'string',
      enum: ['complet', 'partiel'],
      description: '`partiel` : un gel juridique couvre des fichiers de la personne, son identité est conservée',
    }),
    pseudonyme: Type.String({ description: 'Ce qui remplace le nom ; l’identifiant reste la référence pseudonyme du journal' }),
    sessions_supprimees: Type.Integer(),
    facteurs_supprimes: Type.Integer(),
    identite_conservee: Type.Boolean(),
    refus: Type.Array(
      Type.Object({
        gel: Type.Object({ id: IdSchema, nom: Type.String() }),
        fichiers: Type.Array(Type.Object({ id: IdSchema, nom: Type.String() })),
      }),
      { description: 'Ce que les gels juridiques ont empêché d’effacer, par gel' },
    ),
  },
  { $id: 'Effacement', description: 'Compte rendu d’un effacement RGPD' },
)
export type EffacementDto = Static<typeof EffacementSchema>

export const eraseUser = defineOperation({
  method: 'POST',
  url: '/users/:id/effacement',
  operationId: 'eraseUser',
  tags: ['conformite'],
  summary: 'Effacer les données personnelles d’un membre (RGPD, anonymisation)',
  description:
    'Le nom et l’adresse e-mail sont remplacés, les sessions, seconds facteurs, codes de secours et identités SSO ' +
    'supprimés, le compte désactivé, ses exports RGPD stockés détruits. La boîte d’envoi oublie l’adresse : les ' +
    'courriels qui lui sont adressés et ceux déjà traités qui la citent sont supprimés, ceux encore à envoyer à ' +
    'd’autres citent l’adresse pseudonyme. Les fichiers restent (ils appartiennent à l’organisation) ; le journal n’est ' +
    'pas réécrit (le nom et l’adresse que ses entrées anciennes citent sont couverts par leur hash), sa chaîne reste ' +
    'valide et l’identifiant du membre y devient une référence pseudonyme. Les gels juridiques ' +
    'l’emportent : si un gel couvre des fichiers que la personne a créés, son identité est conservée, et le refus est ' +
    'rapporté (`refus`) et journalisé.',
  access: { roles: ADMINS },
  problems: ['LAST_ADMIN'],
  request: { params: { id: EXEMPLE_UTILISATEUR }, body: { motif: 'Demande d’effacement du 4 mars (article 17 RGPD)' } },
  responses: {
    200: {
      description: 'Ce qui a été effacé, et ce que les gels ont gardé',
      example: {
        utilisateur_id: EXEMPLE_UTILISATEUR,
        statut: 'complet',
        pseudonyme: 'Utilisateur effacé 3f6c2a9e',
        sessions_supprimees: 3,
        facteurs_supprimes: 1,
        identite_conservee: false,
        refus: [],
      },
    },
  },
  schema: {
    params: IdParamsSchema,
    body: Type.Object({ motif: Type.String({ minLength: 1, maxLength: 2000, description: 'Motif, gardé au journal' }) }, { additionalProperties: false }),
    response: { 200: EffacementSchema },
  },
})

export const getPreuve = defineOperation({
  method: 'GET',
  url: '/fichiers/:id/preuve',
  operationId: 'getPreuve',
  tags: ['conformite'],
  summary: 'Dossier de preuve d’un fichier, vérifiable hors ligne',
  description:
    'Une archive ZIP qu’un tiers vérifie sans Armoire : `fichier.json` (métadonnées et SHA-256 de chaque version), ' +
    '`journal.json` (chaque entrée du journal sur le fichier avec ses hashs chaînés, et le résultat de la vérification ' +
    'de la chaîne), `conformite.json` (règles, verrous et gels qui se sont appliqués, avec leurs dates), `empreintes.json` ' +
    '(SHA-256 de chaque fichier de l’archive) et `LISEZ-MOI.txt`, qui dit quels hashs recalculer et sous quelle forme canonique.',
  access: { roles: ALL_ROLES },
  request: { params: { id: '9d4f6b2a-1c3e-4a5b-8d7c-2e1f0a9b8c7d' } },
  responses: { 200: { description: 'Le dossier de preuve' } },
  schema: { params: IdParamsSchema, response: { 200: zip('L’archive ZIP') } },
})

export const complianceExportOperations = [exportMe, exportUser, getExportRgpd, downloadExportRgpd, eraseUser, getPreuve]
