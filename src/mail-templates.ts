import { Eta } from 'eta'

/** What a template produces; the mailer adds the recipient and the kind. */
export interface MailContent {
  subject: string
  text: string
  html?: string
}

export interface MailLayout {
  subject: string
  /** The heading of the mail, also the HTML document's title. */
  title: string
  /** Plain text, one string per paragraph: escaped here, never interpreted as HTML. */
  paragraphs: readonly string[]
  action?: { label: string; url: string }
}

const NBSP = '\u00a0'
const FOOTER = 'Ce message vous a été envoyé automatiquement par Armoire. Merci de ne pas y répondre.'

/**
 * The HTML layout, an Eta template kept here as a string rather than a file: `tsc` copies no
 * `.eta` file into dist/, and compiled once at load it costs no read per mail. Every `<%= %>`
 * is escaped by the engine (autoEscape); there is no `<%~ %>` (raw output) in it, keep it so.
 */
const LAYOUT = `<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title><%= it.title %></title></head>
<body style="margin:0;padding:0;background:#f3f4f6;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6;padding:24px 0;">
<tr><td align="center">
<table role="presentation" width="560" cellpadding="0" cellspacing="0" style="width:100%;max-width:560px;background:#ffffff;border-radius:8px;font-family:Arial,Helvetica,sans-serif;">
<tr><td style="padding:24px 32px 0;font-size:13px;font-weight:bold;letter-spacing:2px;color:#52606d;">ARMOIRE</td></tr>
<tr><td style="padding:8px 32px 0;"><h1 style="margin:0;font-size:22px;line-height:1.3;color:#102a43;"><%= it.title %></h1></td></tr>
<% for (const p of it.paragraphs) { %>
<tr><td style="padding:16px 32px 0;font-size:15px;line-height:1.6;color:#1f2933;"><%= p %></td></tr>
<% } %>
<% if (it.action) { %>
<tr><td style="padding:24px 32px 0;"><a href="<%= it.action.url %>" style="display:inline-block;padding:12px 24px;background:#1f4e79;border-radius:6px;color:#ffffff;font-weight:bold;text-decoration:none;"><%= it.action.label %></a></td></tr>
<tr><td style="padding:16px 32px 0;font-size:13px;line-height:1.6;color:#52606d;">Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur\u00a0:<br><a href="<%= it.action.url %>" style="color:#1f4e79;word-break:break-all;"><%= it.action.url %></a></td></tr>
<% } %>
<tr><td style="padding:24px 32px 24px;font-size:12px;line-height:1.5;color:#7b8794;"><%= it.footer %></td></tr>
</table>
</td></tr>
</table>
</body>
</html>`

interface LayoutData {
  title: string
  paragraphs: readonly string[]
  action: { label: string; url: string } | undefined
  footer: string
}

const eta = new Eta({ autoEscape: true })
const layout = eta.compile(LAYOUT)

/**
 * HTML-escapes a value with the template engine's own escaper, for the HTML the invoice PDF
 * still assembles by hand (plugins/billing/template.ts); mails go through the template above.
 */
export function escapeHtml(value: string): string {
  return eta.config.escapeFunction(value)
}

/** Only web links may become a button: a `javascript:` or `data:` URL never reaches an href. */
function webUrl(url: string): string {
  const parsed = new URL(url)
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError(`not a web link: ${parsed.protocol}`)
  return parsed.href
}

/**
 * Lays a mail out as HTML (inline styles, no external assets, so that mail clients show it
 * as it is) and as plain text with the same content.
 */
export function renderMail({ subject, title, paragraphs, action }: MailLayout): Required<MailContent> {
  const url = action ? webUrl(action.url) : undefined
  const data: LayoutData = { title, paragraphs, action: action && url ? { label: action.label, url } : undefined, footer: FOOTER }
  const html = eta.render(layout, data)

  const text = [
    title,
    '',
    ...paragraphs.flatMap((p) => [p, '']),
    ...(action && url ? [`${action.label}${NBSP}: ${url}`, ''] : []),
    '-- ',
    FOOTER,
    '',
  ].join('\n')

  return { subject, text, html }
}

/** A moment as a French sentence reads it, in `fuseau`, with its offset, to avoid any doubt. */
export function dateEnToutesLettres(date: Date, fuseau = 'Europe/Paris'): string {
  return new Intl.DateTimeFormat('fr-FR', {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone: fuseau,
    timeZoneName: 'short',
  }).format(date)
}
