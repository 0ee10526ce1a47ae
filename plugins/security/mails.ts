import { dateEnToutesLettres, type MailContent, renderMail } from '../../src/mail-templates.ts'

/** The security domain's mails, in French, laid out by the kernel's renderMail. */

const NBSP = '\u00a0'

const quand = dateEnToutesLettres

const IF_NOT_YOU = `Si vous n’êtes pas à l’origine de cette action, changez votre mot de passe sans attendre et prévenez l’administrateur de votre organisation.`

export function emailVerificationMail({ nom, lien, heures }: { nom: string; lien: string; heures: number }): Required<MailContent> {
  return renderMail({
    subject: 'Vérifiez votre adresse e-mail Armoire',
    title: 'Vérifiez votre adresse e-mail',
    paragraphs: [
      `Bonjour ${nom},`,
      `Pour confirmer que cette adresse vous appartient, suivez le lien ci-dessous. Il est valable ${heures}${NBSP}heures et ne sert qu’une fois.`,
      'Si vous n’avez pas créé de compte Armoire, ignorez ce message.',
    ],
    action: { label: 'Vérifier mon adresse', url: lien },
  })
}

const CODE_PURPOSE = {
  activation: 'pour activer la double authentification par e-mail',
  connexion: 'pour terminer votre connexion',
  confirmation: 'pour confirmer une modification de votre double authentification',
} as const

export function mfaCodeMail({ nom, code, minutes, motif }: { nom: string; code: string; minutes: number; motif: keyof typeof CODE_PURPOSE }): Required<MailContent> {
  return renderMail({
    subject: `Votre code de vérification Armoire${NBSP}: ${code}`,
    title: 'Votre code de vérification',
    paragraphs: [
      `Bonjour ${nom},`,
      `Voici votre code ${CODE_PURPOSE[motif]}${NBSP}: ${code}`,
      `Il est valable ${minutes}${NBSP}minutes et ne sert qu’une fois. Ne le communiquez à personne, pas même à quelqu’un qui se présente comme le support d’Armoire.`,
      `Si vous n’avez rien demandé, quelqu’un connaît peut-être votre mot de passe${NBSP}: changez-le.`,
    ],
  })
}

export function passwordResetMail({ nom, lien, minutes }: { nom: string; lien: string; minutes: number }): Required<MailContent> {
  return renderMail({
    subject: 'Réinitialisation de votre mot de passe Armoire',
    title: 'Réinitialiser votre mot de passe',
    paragraphs: [
      `Bonjour ${nom},`,
      `Une réinitialisation du mot de passe de votre compte a été demandée. Pour choisir un nouveau mot de passe, suivez le lien ci-dessous${NBSP}: il est valable ${minutes}${NBSP}minutes et ne sert qu’une fois.`,
      'Toutes vos sessions ouvertes seront fermées.',
      'Si vous n’avez rien demandé, ignorez ce message : votre mot de passe actuel reste valable.',
    ],
    action: { label: 'Choisir un nouveau mot de passe', url: lien },
  })
}

export function passwordChangedMail({ nom, le, reinitialise }: { nom: string; le: Date; reinitialise: boolean }): Required<MailContent> {
  return renderMail({
    subject: 'Le mot de passe de votre compte Armoire a changé',
    title: 'Mot de passe modifié',
    paragraphs: [
      `Bonjour ${nom},`,
      reinitialise
        ? `Le mot de passe de votre compte a été réinitialisé le ${quand(le)}, et toutes vos sessions ont été fermées.`
        : `Le mot de passe de votre compte a été changé le ${quand(le)}. Vos autres sessions ont été fermées.`,
      IF_NOT_YOU,
    ],
  })
}

export function newDeviceMail({ nom, le, ip, appareil }: { nom: string; le: Date; ip: string; appareil: string }): Required<MailContent> {
  return renderMail({
    subject: 'Nouvelle connexion à votre compte Armoire',
    title: 'Connexion depuis un nouvel appareil',
    paragraphs: [
      `Bonjour ${nom},`,
      `Votre compte vient d’être utilisé pour se connecter depuis un appareil ou une adresse que nous ne connaissions pas${NBSP}:`,
      `Date${NBSP}: ${quand(le)} — Adresse IP${NBSP}: ${ip} — Appareil${NBSP}: ${appareil}`,
      'Si c’était vous, il n’y a rien à faire.',
      `Sinon, changez votre mot de passe sans attendre, fermez les sessions inconnues depuis la liste de vos sessions et prévenez l’administrateur de votre organisation.`,
    ],
  })
}

export function mfaDisabledMail({ nom, le }: { nom: string; le: Date }): Required<MailContent> {
  return renderMail({
    subject: 'La double authentification de votre compte Armoire est désactivée',
    title: 'Double authentification désactivée',
    paragraphs: [
      `Bonjour ${nom},`,
      `La double authentification de votre compte a été désactivée le ${quand(le)}. Votre compte n’est plus protégé que par son mot de passe.`,
      IF_NOT_YOU,
    ],
  })
}

export function mfaResetMail({ nom, par, le }: { nom: string; par: string; le: Date }): Required<MailContent> {
  return renderMail({
    subject: 'Votre double authentification Armoire a été réinitialisée',
    title: 'Double authentification réinitialisée',
    paragraphs: [
      `Bonjour ${nom},`,
      `${par}, administrateur de votre organisation, a réinitialisé la double authentification de votre compte le ${quand(le)}. Vos facteurs et vos codes de secours ont été supprimés et vos sessions fermées.`,
      'À votre prochaine connexion, activez à nouveau la double authentification depuis votre compte.',
      `Si vous n’avez pas demandé cette réinitialisation, contactez sans attendre l’administrateur de votre organisation.`,
    ],
  })
}

export function invitationMail({ nom, organisation, lien }: { nom: string; organisation: string; lien: string }): Required<MailContent> {
  return renderMail({
    subject: `Invitation à rejoindre ${organisation} sur Armoire`,
    title: 'Vous êtes invité à rejoindre Armoire',
    paragraphs: [
      `Bonjour ${nom},`,
      `Vous avez été invité à rejoindre l’espace «${NBSP}${organisation}${NBSP}» sur Armoire, le coffre-fort documentaire de votre organisation.`,
      `Pour accepter l’invitation, choisissez votre mot de passe en suivant le lien ci-dessous. Ce lien vous est personnel${NBSP}: ne le transmettez à personne.`,
      'Si vous n’attendiez pas cette invitation, vous pouvez ignorer ce message.',
    ],
    action: { label: 'Accepter l’invitation', url: lien },
  })
}

export function accountLockedMail({ nom, jusqua, fuseau = 'Europe/Paris' }: { nom: string; jusqua: Date; fuseau?: string }): Required<MailContent> {
  const jusquau = quand(jusqua, fuseau)
  return renderMail({
    subject: 'Votre compte Armoire est temporairement verrouillé',
    title: 'Compte temporairement verrouillé',
    paragraphs: [
      `Bonjour ${nom},`,
      `À la suite de plusieurs tentatives de connexion infructueuses, votre compte a été verrouillé par mesure de sécurité jusqu’au ${jusquau}.`,
      'Si vous êtes à l’origine de ces tentatives, patientez jusqu’à cette heure avant de réessayer.',
      `Sinon, quelqu’un essaie peut-être d’accéder à votre compte${NBSP}: prévenez l’administrateur de votre organisation et, une fois le verrouillage levé, changez votre mot de passe.`,
    ],
  })
}
