import { type Static, Type } from '@sinclair/typebox'
import { IdParamsSchema, IdSchema, Nullable, PageQuerySchema, PageSchema, StringEnum, TimestampSchema } from './common.ts'
import { ADMINS, defineOperation } from './operation.ts'

/** FeexPay's mobile-money operators, one path segment each (FEEXPAY.md). */
export const RESEAUX = [
  'mtn', 'moov', 'celtiis_bj', 'coris',
  'togocom_tg', 'moov_tg',
  'mtn_ci', 'moov_ci', 'orange_ci', 'wave_ci',
  'orange_sn', 'free_sn', 'wave_sn',
  'orange_bf', 'moov_bf', 'wave_bf',
  'mtn_cg',
  'orange_ml',
] as const
export type Reseau = (typeof RESEAUX)[number]

export const PERIODICITES = ['mensuelle', 'annuelle'] as const
export const STATUTS_ABONNEMENT = ['essai', 'en_attente_paiement', 'actif', 'en_retard', 'suspendu', 'annule', 'expire'] as const
export const STATUTS_PAIEMENT = ['en_attente', 'reussi', 'echoue', 'expire'] as const

const Xof = (description: string) => Type.Integer({ description: `${description}, en francs CFA (XOF) entiers` })
const PlanCode = Type.String({ pattern: '^[a-z][a-z0-9_]{1,31}$', description: 'Code du plan, ex. essentiel' })
const Periodicite = StringEnum(PERIODICITES, { description: 'Période facturée' })

export const PlanSchema = Type.Object(
  {
    code: Type.String(),
    nom: Type.String(),
    prix_mensuel_ht: Xof('Prix d’un mois hors taxes'),
    prix_annuel_ht: Xof('Prix d’une année hors taxes'),
    essai_jours: Nullable(Type.Integer({ description: 'Durée de l’essai gratuit, pour le plan d’essai' })),
    quotas: Type.Object({
      stockage_octets: Type.Integer({ description: 'Octets stockés, versions et corbeille comprises ; 0 = illimité' }),
      membres: Type.Integer({ description: 'Membres actifs ; 0 = illimité' }),
      armoires: Type.Integer({ description: 'Armoires hors corbeille ; 0 = illimité' }),
    }),
    fonctionnalites: Type.Array(Type.String()),
  },
  { $id: 'Plan' },
)
export type PlanDto = Static<typeof PlanSchema>

const UsageSchema = Type.Object({
  utilise: Type.Integer(),
  quota: Type.Integer({ description: '0 = illimité' }),
})

export const AbonnementSchema = Type.Object(
  {
    id: IdSchema,
    plan: PlanSchema,
    periodicite: Periodicite,
    statut: StringEnum(STATUTS_ABONNEMENT, {
      description:
        '`essai` et `actif` : tout est permis ; `en_attente_paiement` : un plan choisi attend son paiement ; `en_retard` : ' +
        'période échue, délai de grâce ; `suspendu`, `expire` : lecture seule (aucune donnée n’est supprimée)',
    }),
    periode_debut: TimestampSchema,
    periode_fin: TimestampSchema,
    jours_restants: Type.Integer({ description: 'Jours pleins avant la fin de la période (0 si elle est échue)' }),
    renouvellement_auto: Type.Boolean(),
    lecture_seule: Type.Boolean({ description: 'Dépôts, nouvelles versions et nouveaux conteneurs refusés (402)' }),
    changement_prevu: Nullable(
      Type.Object({
        plan: Type.String(),
        periodicite: Periodicite,
        effet: StringEnum(['paiement', 'fin_periode'], { description: 'Une montée prend effet au paiement, une descente à la fin de la période' }),
      }),
    ),
    prochain_paiement: Nullable(
      Type.Object({
        plan: Type.String(),
        periodicite: Periodicite,
        montant_ht: Xof('Montant hors taxes, crédit de prorata déduit'),
        montant_tva: Xof('TVA'),
        montant_ttc: Xof('Montant à payer'),
        credit_prorata_ht: Xof('Reste de la période en cours crédité (montée de plan)'),
        devise: Type.Literal('XOF'),
      }),
    ),
    utilisation: Type.Object({ stockage_octets: UsageSchema, membres: UsageSchema, armoires: UsageSchema }),
    en_retard_depuis: Nullable(TimestampSchema),
    suspendu_depuis: Nullable(TimestampSchema),
    updated_at: TimestampSchema,
  },
  { $id: 'Abonnement' },
)
export type AbonnementDto = Static<typeof AbonnementSchema>

export const PaiementSchema = Type.Object(
  {
    id: IdSchema,
    statut: StringEnum(STATUTS_PAIEMENT),
    nature: StringEnum(['souscription', 'renouvellement', 'changement']),
    plan: Type.String(),
    periodicite: Periodicite,
    montant: Xof('Montant demandé, toutes taxes comprises'),
    devise: Type.Literal('XOF'),
    moyen: StringEnum(['mobile_money', 'carte']),
    reseau: Nullable(Type.String()),
    telephone: Nullable(Type.String()),
    reference: Nullable(Type.String({ description: 'Référence FeexPay' })),
    payment_url: Nullable(Type.String({ description: 'Page de paiement à ouvrir (opérateurs à redirection, carte)' })),
    raison: Nullable(Type.String({ description: 'Motif d’échec donné par FeexPay' })),
    facture_id: Nullable(IdSchema),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
    finalise_at: Nullable(TimestampSchema),
  },
  { $id: 'Paiement' },
)
export type PaiementDto = Static<typeof PaiementSchema>

const PartieSchema = Type.Object({
  nom: Type.String(),
  adresse: Type.String(),
  ville: Nullable(Type.String()),
  pays: Nullable(Type.String()),
  ifu: Nullable(Type.String()),
  rccm: Nullable(Type.String()),
  email: Nullable(Type.String()),
  telephone: Nullable(Type.String()),
})

export const FactureSchema = Type.Object(
  {
    id: IdSchema,
    type: StringEnum(['facture', 'avoir']),
    numero: Type.String({ description: 'FAC-2026-000001, ou AV-2026-000001 pour un avoir' }),
    facture_origine_id: Nullable(IdSchema),
    motif: Nullable(Type.String()),
    vendeur: PartieSchema,
    acheteur: PartieSchema,
    lignes: Type.Array(
      Type.Object({ libelle: Type.String(), quantite: Type.Integer(), prix_unitaire_ht: Type.Integer(), montant_ht: Type.Integer() }),
    ),
    montant_ht: Xof('Total hors taxes'),
    taux_tva: Type.Number({ description: 'Taux de TVA en pour cent' }),
    montant_tva: Xof('TVA'),
    montant_ttc: Xof('Total toutes taxes comprises'),
    devise: Type.Literal('XOF'),
    reference_paiement: Nullable(Type.String()),
    periode_debut: Nullable(TimestampSchema),
    periode_fin: Nullable(TimestampSchema),
    emise_at: TimestampSchema,
    pdf_disponible: Type.Boolean({ description: 'Le PDF est rendu peu après l’émission' }),
    pdf_sha256: Nullable(Type.String()),
  },
  { $id: 'Facture' },
)
export type FactureDto = Static<typeof FactureSchema>

const Text = (max: number) => Type.String({ minLength: 1, maxLength: max, pattern: '\\S' })
const OptionalText = (max: number) => Type.Optional(Nullable(Type.String({ maxLength: max })))

export const FacturationSchema = Type.Object(
  {
    raison_sociale: Type.String(),
    adresse: Type.String(),
    ville: Nullable(Type.String()),
    pays: Nullable(Type.String()),
    ifu: Nullable(Type.String({ description: 'Identifiant fiscal unique' })),
    rccm: Nullable(Type.String({ description: 'Registre du commerce' })),
    email: Nullable(Type.String()),
    telephone: Nullable(Type.String()),
    updated_at: Nullable(TimestampSchema),
  },
  { $id: 'Facturation', description: 'Coordonnées de facturation (l’acheteur des factures)' },
)
export type FacturationDto = Static<typeof FacturationSchema>


const EX_ORG_ID = '5b0c6a52-8d3e-4f0a-9b1c-2d3e4f5a6b7c'
const EX_PAIEMENT_ID = '7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b'
const EX_FACTURE_ID = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
const GIB = 1024 ** 3

const EX_PLAN_ESSENTIEL: PlanDto = {
  code: 'essentiel',
  nom: 'Essentiel',
  prix_mensuel_ht: 10_000,
  prix_annuel_ht: 100_000,
  essai_jours: null,
  quotas: { stockage_octets: 20 * GIB, membres: 5, armoires: 10 },
  fonctionnalites: ['chiffrement', 'versions', 'journal', 'sauvegardes'],
}
const EX_PLAN_ESSAI: PlanDto = {
  code: 'essai',
  nom: 'Essai gratuit',
  prix_mensuel_ht: 0,
  prix_annuel_ht: 0,
  essai_jours: 14,
  quotas: { stockage_octets: 2 * GIB, membres: 3, armoires: 3 },
  fonctionnalites: ['chiffrement', 'versions', 'journal'],
}

const EX_ABONNEMENT: AbonnementDto = {
  id: EX_ORG_ID,
  plan: EX_PLAN_ESSAI,
  periodicite: 'mensuelle',
  statut: 'en_attente_paiement',
  periode_debut: '2026-12-01T09:00:00.000Z',
  periode_fin: '2026-12-15T09:00:00.000Z',
  jours_restants: 12,
  renouvellement_auto: true,
  lecture_seule: false,
  changement_prevu: { plan: 'essentiel', periodicite: 'mensuelle', effet: 'paiement' },
  prochain_paiement: {
    plan: 'essentiel',
    periodicite: 'mensuelle',
    montant_ht: 10_000,
    montant_tva: 1_800,
    montant_ttc: 11_800,
    credit_prorata_ht: 0,
    devise: 'XOF',
  },
  utilisation: {
    stockage_octets: { utilise: 734_003_200, quota: 2 * GIB },
    membres: { utilise: 2, quota: 3 },
    armoires: { utilise: 1, quota: 3 },
  },
  en_retard_depuis: null,
  suspendu_depuis: null,
  updated_at: '2026-12-02T10:15:00.000Z',
}

const EX_PAIEMENT: PaiementDto = {
  id: EX_PAIEMENT_ID,
  statut: 'en_attente',
  nature: 'souscription',
  plan: 'essentiel',
  periodicite: 'mensuelle',
  montant: 11_800,
  devise: 'XOF',
  moyen: 'mobile_money',
  reseau: 'mtn',
  telephone: '2290161000000',
  reference: 'FP-3F2A9C1B7D4E8A60',
  payment_url: null,
  raison: null,
  facture_id: null,
  created_at: '2026-12-02T10:16:00.000Z',
  updated_at: '2026-12-02T10:16:02.000Z',
  finalise_at: null,
}

const EX_FACTURE: FactureDto = {
  id: EX_FACTURE_ID,
  type: 'facture',
  numero: 'FAC-2026-000001',
  facture_origine_id: null,
  motif: null,
  vendeur: { nom: 'Armoire SAS', adresse: 'Cotonou, Bénin', ville: null, pays: null, ifu: '0202212345678', rccm: 'RB/COT/22 B 12345', email: null, telephone: null },
  acheteur: { nom: 'Cabinet Adjovi SARL', adresse: '12 rue des Cocotiers', ville: 'Cotonou', pays: 'Bénin', ifu: '3201900000001', rccm: null, email: null, telephone: null },
  lignes: [{ libelle: 'Abonnement Essentiel (mensuelle) du 2 décembre 2026 au 2 janvier 2027', quantite: 1, prix_unitaire_ht: 10_000, montant_ht: 10_000 }],
  montant_ht: 10_000,
  taux_tva: 18,
  montant_tva: 1_800,
  montant_ttc: 11_800,
  devise: 'XOF',
  reference_paiement: 'FP-3F2A9C1B7D4E8A60',
  periode_debut: '2026-12-02T10:17:00.000Z',
  periode_fin: '2027-01-02T10:17:00.000Z',
  emise_at: '2026-12-02T10:17:00.000Z',
  pdf_disponible: true,
  pdf_sha256: 'a3f1c2d4e5b6a7980112233445566778899aabbccddeeff00112233445566778',
}

const EX_FACTURATION = {
  raison_sociale: 'Cabinet Adjovi SARL',
  adresse: '12 rue des Cocotiers',
  ville: 'Cotonou',
  pays: 'Bénin',
  ifu: '3201900000001',
  rccm: 'RB/COT/19 B 0001',
  email: 'compta@adjovi.bj',
  telephone: '+229 01 61 00 00 00',
}

export const listPlans = defineOperation({
  method: 'GET',
  url: '/plans',
  operationId: 'listPlans',
  tags: ['abonnement'],
  summary: 'Les plans proposés, leurs prix et leurs quotas',
  description: 'Liste les plans proposés, du plus petit au plus grand, avec leurs prix hors taxes et leurs quotas ; sans authentification, pour la page des tarifs.',
  access: { public: true },
  schema: { response: { 200: Type.Object({ items: Type.Array(PlanSchema) }, { description: 'Plans, du plus petit au plus grand' }) } },
  responses: { 200: { example: { items: [EX_PLAN_ESSAI, EX_PLAN_ESSENTIEL] } } },
})

export const getAbonnement = defineOperation({
  method: 'GET',
  url: '/abonnement',
  operationId: 'getAbonnement',
  tags: ['abonnement'],
  summary: 'L’abonnement de l’organisation : plan, statut, période, prochain paiement, utilisation des quotas',
  description: 'Rend l’abonnement en cours : plan, statut, période et jours restants, changement de plan prévu, prochain montant dû (TVA et crédit de prorata compris) et utilisation de chaque quota.',
  access: { roles: ADMINS },
  schema: { response: { 200: AbonnementSchema } },
  responses: { 200: { description: 'L’abonnement de l’organisation', example: EX_ABONNEMENT } },
})

export const choisirAbonnement = defineOperation({
  method: 'POST',
  url: '/abonnement/choisir',
  operationId: 'choisirAbonnement',
  tags: ['abonnement'],
  summary: 'Choisir un plan et une périodicité',
  description:
    'Une montée de plan prend effet au paiement (POST /abonnement/payer), le reste de la période en cours étant crédité au ' +
    'prorata des jours. Une descente prend effet à la fin de la période ; elle est refusée (`QUOTA_EXCEEDED`, 409) quand ' +
    'l’utilisation actuelle dépasse un quota du plan choisi, nommé dans le détail.',
  access: { roles: ADMINS },
  problems: ['CONFLICT', 'QUOTA_EXCEEDED'],
  request: { body: { plan: 'essentiel', periodicite: 'mensuelle' } },
  responses: { 200: { description: 'Le plan est choisi : l’abonnement dit quand il prend effet', example: EX_ABONNEMENT } },
  schema: {
    body: Type.Object({ plan: PlanCode, periodicite: Periodicite }, { additionalProperties: false }),
    response: { 200: AbonnementSchema },
  },
})

const Telephone = Type.String({
  pattern: '^\\+?[0-9 ]{8,20}$',
  description: 'Numéro de mobile avec l’indicatif du pays, ex. 22901XXXXXXXX (Bénin : 229 puis 10 chiffres commençant par 01)',
})

/** What each means of payment requires, said by the schema: one branch per `moyen`. */
const PayBodySchema = Type.Union(
  [
    Type.Object(
      {
        moyen: Type.Literal('mobile_money', { description: 'Mobile money : le réseau et le téléphone du client' }),
        reseau: StringEnum(RESEAUX, { description: 'Opérateur (FeexPay)' }),
        telephone: Telephone,
      },
      { additionalProperties: false, title: 'Mobile money' },
    ),
    Type.Object(
      {
        moyen: Type.Literal('carte', { description: 'Carte : l’identité et l’adresse du porteur' }),
        telephone: Telephone,
        prenom: Text(100),
        nom: Text(100),
        email: Type.String({ format: 'email', maxLength: 254 }),
        ville: Text(100),
        code_postal: Type.Optional(Type.String({ maxLength: 20 })),
        pays: Type.String({ pattern: '^[A-Z]{2}$', description: 'Code pays ISO 3166-1, ex. BJ' }),
      },
      { additionalProperties: false, title: 'Carte' },
    ),
  ],
  { description: 'Mobile money (réseau et téléphone) ou carte (identité et adresse du porteur)' },
)
export type PayBody = Static<typeof PayBodySchema>

export const payerAbonnement = defineOperation({
  method: 'POST',
  url: '/abonnement/payer',
  operationId: 'payerAbonnement',
  tags: ['abonnement'],
  summary: 'Payer le prochain montant dû par FeexPay (mobile money ou carte)',
  description:
    'Le montant est fixé par le serveur d’après le plan, jamais par le client. Répond 202 : le paiement est en attente de la ' +
    'confirmation du client sur son téléphone, ou de la page `payment_url` (opérateurs à redirection, carte). Un refus de ' +
    'FeexPay (numéro invalide, solde insuffisant…) répond 422 `PAYMENT_REFUSED` avec son motif ; FeexPay injoignable répond ' +
    '502 `PAYMENT_PROVIDER_UNAVAILABLE` et le paiement reste en attente, vérifié en arrière-plan.',
  access: { roles: ADMINS },
  problems: ['NOTHING_DUE', 'PAYMENT_PENDING', 'PAYMENT_REFUSED', 'PAYMENT_PROVIDER_UNAVAILABLE'],
  request: { body: { moyen: 'mobile_money', reseau: 'mtn', telephone: '2290161000000' } },
  responses: { 202: { description: 'Paiement demandé, en attente de la confirmation du client', example: EX_PAIEMENT } },
  schema: {
    body: PayBodySchema,
    response: { 202: PaiementSchema },
  },
})

export const listPaiements = defineOperation({
  method: 'GET',
  url: '/paiements',
  operationId: 'listPaiements',
  tags: ['abonnement'],
  summary: 'Les paiements de l’organisation, du plus récent au plus ancien',
  description: 'Liste les paiements de l’organisation par pages, du plus récent au plus ancien, avec leur statut, leur référence FeexPay et leur facture.',
  access: { roles: ADMINS },
  schema: { querystring: PageQuerySchema, response: { 200: PageSchema(PaiementSchema, 'PagePaiements') } },
  responses: { 200: { description: 'Une page de paiements', example: { items: [EX_PAIEMENT], next_cursor: null } } },
})

export const getPaiement = defineOperation({
  method: 'GET',
  url: '/paiements/:id',
  operationId: 'getPaiement',
  tags: ['abonnement'],
  summary: 'Un paiement ; en attente, son statut est d’abord relu chez FeexPay',
  description: 'Rend un paiement. En attente, son statut est d’abord relu chez FeexPay (et appliqué : un paiement confirmé active l’abonnement et émet sa facture).',
  access: { roles: ADMINS },
  schema: { params: IdParamsSchema, response: { 200: PaiementSchema } },
  request: { params: { id: EX_PAIEMENT_ID } },
  responses: { 200: { description: 'Le paiement', example: EX_PAIEMENT } },
})

export const feexpayWebhook = defineOperation({
  method: 'POST',
  url: '/paiements/feexpay/webhook',
  operationId: 'feexpayWebhook',
  tags: ['abonnement'],
  summary: 'Notification de FeexPay (réservée à FeexPay)',
  description:
    'Protégée par le secret partagé (en-tête `x-webhook-secret` ou paramètre `secret` de l’URL configurée chez FeexPay). ' +
    'Seule la `reference` du corps est lue : le statut et le montant sont relus chez FeexPay. Répond 200 une fois traitée ' +
    '(ou quand elle ne nous concerne pas), 503 quand la vérification n’a pas pu être faite, pour que FeexPay la renvoie.',
  access: { webhook: { secret: 'FEEXPAY_WEBHOOK_SECRET', header: 'x-webhook-secret', query: 'secret', refused: 'PAYMENT_WEBHOOK_REFUSED' } },
  rateLimits: [{ max: 'WEBHOOK_RATE_LIMIT_MAX', window: '1 minute', per: 'address' }],
  problems: ['SERVICE_UNAVAILABLE'],
  request: {
    querystring: { secret: 'le-secret-partage' },
    body: { reference: 'FP-3F2A9C1B7D4E8A60', status: 'SUCCESSFUL', amount: 11_800, callback_info: EX_PAIEMENT_ID, type: 'Paiement' },
  },
  responses: { 200: { example: { recu: true } } },
  schema: {
    querystring: Type.Object({ secret: Type.Optional(Type.String({ maxLength: 256 })) }),
    body: Type.Object(
      {
        reference: Type.Optional(Type.String({ maxLength: 200, description: 'La seule donnée lue : le reste est relu chez FeexPay' })),
        status: Type.Optional(Type.Unknown({ description: 'Ignoré (relu chez FeexPay)' })),
        amount: Type.Optional(Type.Unknown({ description: 'Ignoré (relu chez FeexPay)' })),
        callback_info: Type.Optional(Type.Unknown({ description: 'Ignoré (relu chez FeexPay)' })),
        type: Type.Optional(Type.Unknown({ description: 'Ignoré' })),
      },
      { additionalProperties: true, description: 'Le corps que FeexPay envoie ; seule `reference` est lue' },
    ),
    response: { 200: Type.Object({ recu: Type.Literal(true) }, { description: 'Notification traitée' }) },
  },
})

export const listFactures = defineOperation({
  method: 'GET',
  url: '/factures',
  operationId: 'listFactures',
  tags: ['abonnement'],
  summary: 'Les factures et avoirs de l’organisation, du plus récent au plus ancien',
  description: 'Liste les factures et avoirs de l’organisation par pages, du plus récent au plus ancien ; chacun dit si son PDF est prêt et donne son SHA-256.',
  access: { roles: ADMINS },
  schema: { querystring: PageQuerySchema, response: { 200: PageSchema(FactureSchema, 'PageFactures') } },
  responses: { 200: { description: 'Une page de factures', example: { items: [EX_FACTURE], next_cursor: null } } },
})

export const getFacture = defineOperation({
  method: 'GET',
  url: '/factures/:id',
  operationId: 'getFacture',
  tags: ['abonnement'],
  summary: 'Une facture ou un avoir',
  description: 'Rend une facture ou un avoir tel qu’émis (immuable) : numéro, vendeur, client, lignes, montants HT, TVA et TTC, période, référence du paiement.',
  access: { roles: ADMINS },
  schema: { params: IdParamsSchema, response: { 200: FactureSchema } },
  request: { params: { id: EX_FACTURE_ID } },
  responses: { 200: { description: 'La facture', example: EX_FACTURE } },
})

export const getFacturePdf = defineOperation({
  method: 'GET',
  url: '/factures/:id/pdf',
  operationId: 'getFacturePdf',
  tags: ['abonnement'],
  summary: 'Le PDF d’une facture ou d’un avoir',
  description: 'Répond 503 (avec Retry-After) tant que le PDF, rendu juste après l’émission, n’est pas prêt.',
  access: { roles: ADMINS },
  problems: ['PDF_NOT_READY'],
  request: { params: { id: EX_FACTURE_ID } },
  schema: {
    params: IdParamsSchema,
    response: { 200: { description: 'Le PDF (son SHA-256 est dans `x-content-sha256`)', content: { 'application/pdf': { schema: Type.String({ format: 'binary' }) } } } },
  },
})

export const getFacturation = defineOperation({
  method: 'GET',
  url: '/organisation/facturation',
  operationId: 'getFacturation',
  tags: ['abonnement'],
  summary: 'Les coordonnées de facturation de l’organisation',
  description: 'Sans coordonnées enregistrées, la raison sociale est le nom de l’organisation et l’adresse est vide.',
  access: { roles: ADMINS },
  schema: { response: { 200: FacturationSchema } },
  responses: { 200: { example: { ...EX_FACTURATION, updated_at: '2026-12-02T10:10:00.000Z' } } },
})

export const putFacturation = defineOperation({
  method: 'PUT',
  url: '/organisation/facturation',
  operationId: 'putFacturation',
  tags: ['abonnement'],
  summary: 'Enregistrer les coordonnées de facturation (elles valent pour les factures émises ensuite)',
  description: 'Enregistre la raison sociale, l’adresse, l’IFU, le RCCM et les contacts de l’organisation : le client des factures émises ensuite (les factures déjà émises ne changent pas).',
  access: { roles: ADMINS },
  schema: {
    body: Type.Object(
      {
        raison_sociale: Text(200),
        adresse: Text(500),
        ville: OptionalText(100),
        pays: OptionalText(100),
        ifu: OptionalText(50),
        rccm: OptionalText(50),
        email: Type.Optional(Nullable(Type.String({ format: 'email', maxLength: 254 }))),
        telephone: OptionalText(30),
      },
      { additionalProperties: false },
    ),
    response: { 200: FacturationSchema },
  },
  request: { body: EX_FACTURATION },
  responses: { 200: { example: { ...EX_FACTURATION, updated_at: '2026-12-02T10:10:00.000Z' } } },
})

export const billingOperations = [
  listPlans,
  getAbonnement,
  choisirAbonnement,
  payerAbonnement,
  listPaiements,
  getPaiement,
  feexpayWebhook,
  listFactures,
  getFacture,
  getFacturePdf,
  getFacturation,
  putFacturation,
]
