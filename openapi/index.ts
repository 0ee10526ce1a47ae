import { backupOperations } from './backup.ts'
import { planificationOperations } from './backup-planifications.ts'
import { billingOperations } from './billing.ts'
import { complianceOperations } from './compliance.ts'
import { complianceExportOperations } from './compliance-exports.ts'
import { trashOperations } from './documents-corbeille.ts'
import { fileOperations } from './documents-fichiers.ts'
import { hierarchyOperations } from './documents.ts'
import { healthOperations } from './health.ts'
import { metricsOperations } from './metrics.ts'
import { securityOperations } from './security.ts'
import { mfaOperations } from './security-2fa.ts'
import { passwordOperations } from './security-passwords.ts'
import { ssoOperations } from './security-sso.ts'
import type { Operation } from './operation.ts'
import { statsOperations } from './stats.ts'

/** The tags of the document, one per domain, in display order. */
export const tags = [
  { name: 'sante', description: 'Santé de l’instance : vivacité et disponibilité.' },
  { name: 'supervision', description: 'Métriques Prometheus de l’instance, pour l’exploitant (jeton METRICS_TOKEN).' },
  { name: 'authentification', description: 'Inscription, connexion, jetons et sessions ; mot de passe oublié, vérification de l’adresse e-mail.' },
  {
    name: 'double-authentification',
    description: 'Second facteur : application TOTP ou code par e-mail, codes de secours, étape de connexion.',
  },
  { name: 'sso', description: 'Connexion avec Google ou Microsoft (OpenID Connect).' },
  { name: 'organisation', description: 'Réglages de sécurité de l’organisation : double authentification exigée, domaines SSO.' },
  { name: 'utilisateurs', description: 'Mon compte et les membres de l’organisation, avec leurs rôles.' },
  { name: 'journal', description: 'Journal d’activité chaîné : consultation, export et vérification d’intégrité.' },
  { name: 'documents', description: 'Armoires, casiers et dossiers (imbricables) : création, listes paginées, renommage, déplacement.' },
  {
    name: 'fichiers',
    description: 'Fichiers chiffrés au repos : dépôt en flux, téléchargement (plages, ETag), versions, suppression locale après dépôt.',
  },
  { name: 'corbeille', description: 'Éléments supprimés : restauration, purge définitive par crypto-effacement, purge automatique.' },
  {
    name: 'sauvegardes',
    description: 'Archives ZIP chiffrées d’un fichier, d’un dossier, d’un casier, d’une armoire ou de toute l’organisation ; vérification, restauration sans écrasement.',
  },
  {
    name: 'abonnement',
    description: 'Plans et quotas, abonnement de l’organisation, paiements FeexPay (mobile money, carte), factures et avoirs en PDF.',
  },
  {
    name: 'conformite',
    description:
      'Durées de conservation (gouvernance ou conformité), verrous, gels juridiques, élimination à échéance avec certificat, ' +
      'RGPD et dossiers de preuve.',
  },
  {
    name: 'tableaux-de-bord',
    description: 'Statistiques de l’organisation et activité de chaque membre, en JSON, CSV ou PDF ; compteurs exacts dès la validation.',
  },
]

/** The whole contract: every operation the API serves, and nothing else. */
export const contract: readonly Operation[] = [
  ...healthOperations,
  ...metricsOperations,
  ...securityOperations,
  ...mfaOperations,
  ...passwordOperations,
  ...ssoOperations,
  ...hierarchyOperations,
  ...fileOperations,
  ...trashOperations,
  ...planificationOperations,
  ...backupOperations,
  ...billingOperations,
  ...complianceOperations,
  ...complianceExportOperations,
  ...statsOperations,
]
