import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import puppeteer, { type Browser, type Page, type PDFOptions } from 'puppeteer-core'

export interface PdfOptions {
  /** The system Chromium (Debian's `chromium` package). */
  chromiumPath: string
  /** Pages rendering at once; the others wait their turn. */
  pages: number
  /** Longest a render may take, waiting for a page included. */
  timeoutMs: number
}

export interface RenderOptions {
  format?: PDFOptions['format']
  landscape?: boolean
  /** CSS margins, e.g. `{ top: '18mm', … }`; the template's `@page` rule wins when it sets them. */
  margin?: PDFOptions['margin']
}

export interface PdfService {
  /**
   * Renders a self-contained HTML document (inline styles, `data:` images) to PDF. Scripts do
   * not run and nothing is fetched from the network: the HTML may carry customers' text.
   */
  render(html: string, options?: RenderOptions): Promise<Buffer>
  /** The browser's process id, null while none runs (benchmarks read its memory). */
  browserPid(): number | null
}

declare module 'fastify' {
  interface FastifyInstance {
    pdf: PdfService
  }
}

export class PdfTimeoutError extends Error {
  override name = 'PdfTimeoutError'
}

class BrowserLostError extends Error {
  override name = 'BrowserLostError'
  constructor(cause: unknown) {
    super('chromium exited during the render', { cause })
  }
}

/** How Armoire runs Chromium, headless: no sandbox (containers), no GPU, no calls home. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Containers give /dev/shm 64 MB; Chromium's renderers would crash on large documents.
  '--disable-dev-shm-usage',
]

// A page is replaced after this many renders, so whatever a renderer keeps from one document
// to the next cannot grow without bound.
const RENDERS_PER_PAGE = 100

interface PooledPage {
  page: Page
  renders: number
}

/**
 * One Chromium for the whole process, launched at the first render and again when it dies,
 * with at most `pages` tabs rendering at once. Tabs are reused between renders.
 */
export function createPdfService(opts: PdfOptions, log: FastifyBaseLogger): PdfService & { close(): Promise<void> } {
  let browser: Promise<Browser> | null = null
  let closed = false
  const idle: PooledPage[] = []
  const waiting: (() => void)[] = []
  let busy = 0
  let pid: number | null = null

  function launch(): Promise<Browser> {
    const launching = puppeteer
      .launch({
        executablePath: opts.chromiumPath,
        headless: true,
        args: CHROMIUM_FLAGS,
        // The app handles its own signals and closes the browser in onClose.
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        timeout: 30_000,
      })
      .then((b) => {
        b.on('disconnected', () => {
          // Its tabs died with it; the next render launches a new one.
          if (browser === launching) {
            browser = null
            pid = null
            idle.length = 0
            if (!closed) log.warn({ component: 'pdf' }, 'chromium exited: it will be started again at the next render')
          }
        })
        pid = b.process()?.pid ?? null
        log.info({ component: 'pdf', pid }, 'chromium started')
        return b
      })
    launching.catch(() => {
      if (browser === launching) browser = null
    })
    browser = launching
    return launching
  }

  async function acquire(): Promise<PooledPage> {
    while (busy >= opts.pages) await new Promise<void>((resolve) => waiting.push(resolve))
    busy++
    try {
      const pooled = idle.pop()
      if (pooled && !pooled.page.isClosed()) return pooled
      const b = await (browser ?? launch())
      const page = await b.newPage()
      await page.setJavaScriptEnabled(false)
      await page.setRequestInterception(true)
      page.on('request', (request) => {
        const url = request.url()
        if (url.startsWith('data:') || url === 'about:blank') void request.continue()
        else void request.abort('blockedbyclient')
      })
      return { page, renders: 0 }
    } catch (error) {
      release(null)
      throw error
    }
  }

  function release(pooled: PooledPage | null): void {
    busy--
    if (pooled) {
      if (closed || pooled.page.isClosed() || pooled.renders >= RENDERS_PER_PAGE || !pooled.page.browser().connected) {
        void pooled.page.close().catch(() => {})
      } else {
        idle.push(pooled)
      }
    }
    waiting.shift()?.()
  }

  async function renderOnce(html: string, options: RenderOptions, deadline: number): Promise<Buffer> {
    const pooled = await acquire()
    let reusable = false
    try {
      await pooled.page.setContent(html, { waitUntil: 'load', timeout: Math.max(1, deadline - Date.now()) })
      const pdf = await pooled.page.pdf({
        format: options.format ?? 'A4',
        landscape: options.landscape ?? false,
        printBackground: true,
        preferCSSPageSize: true,
        margin: options.margin ?? { top: '0', right: '0', bottom: '0', left: '0' },
        timeout: Math.max(1, deadline - Date.now()),
      })
      pooled.renders++
      reusable = true
      return Buffer.from(pdf)
    } catch (error) {
      if (!pooled.page.browser().connected) throw new BrowserLostError(error)
      if ((error as Error).name === 'TimeoutError') throw new PdfTimeoutError(`PDF render took more than ${opts.timeoutMs} ms`)
      throw error
    } finally {
      if (reusable) release(pooled)
      else {
        // A tab that failed mid-render is not trusted with the next document.
        void pooled.page.close().catch(() => {})
        release(null)
      }
    }
  }

  return {
    async render(html, options = {}) {
      if (closed) throw new Error('the PDF service is closed')
      const deadline = Date.now() + opts.timeoutMs
      try {
        return await renderOnce(html, options, deadline)
      } catch (error) {
        if (!(error instanceof BrowserLostError)) throw error
        if (closed) throw error.cause
        // The browser died under this render (a crash, or killed): once more on a new one.
        log.warn({ component: 'pdf', err: error.cause }, 'PDF render interrupted by the browser exiting: retrying once')
        return renderOnce(html, options, deadline).catch((again: unknown) => {
          throw again instanceof BrowserLostError ? again.cause : again
        })
      }
    },
    browserPid() {
      return pid
    },
    async close() {
      closed = true
      const current = browser
      browser = null
      pid = null
      idle.length = 0
      if (!current) return
      const b = await current.catch(() => null)
      await b?.close().catch(() => b.process()?.kill('SIGKILL'))
    },
  }
}

/** `app.pdf`: HTML to PDF through the system Chromium; the browser is closed with the app. */
export const pdfPlugin = fp(
  async (app: FastifyInstance, opts: PdfOptions) => {
    const service = createPdfService(opts, app.log)
    app.decorate('pdf', { render: service.render, browserPid: service.browserPid })
    app.addHook('onClose', () => service.close())
  },
  { name: 'pdf', fastify: '5.x' },
)
