import { createServer } from 'node:http'
import t from 'tap'
import { build } from './helpers/build.ts'
import { pdfText } from './helpers/pdf.ts'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function exited(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!alive(pid)) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

const page = (body: string) =>
  `<!doctype html><html lang="fr"><head><meta charset="utf-8"><style>@page{size:A4;margin:15mm}body{font-family:sans-serif}</style></head><body>${body}</body></html>`

t.test('the PDF service renders HTML with one browser and survives its death', async (t) => {
  const app = await build(t, { PDF_PAGES: '2' })
  t.equal(app.pdf.browserPid(), null, 'no browser before the first render')

  const pdf = await app.pdf.render(page('<h1>Facture FAC-2026-000001</h1><p>Montant : 12 000 FCFA — émise le 2 décembre 2026</p>'))
  t.equal(pdf.subarray(0, 5).toString(), '%PDF-')
  const text = await pdfText(pdf)
  t.match(text, /Facture FAC-2026-000001/)
  t.match(text, /12 000 FCFA/)
  t.match(text, /émise le 2 décembre 2026/)

  const first = app.pdf.browserPid()
  t.type(first, 'number')
  const many = await Promise.all(Array.from({ length: 6 }, (_, i) => app.pdf.render(page(`<p>Document ${i}</p>`))))
  for (const [i, doc] of many.entries()) t.match(await pdfText(doc), new RegExp(`Document ${i}\\b`))
  t.equal(app.pdf.browserPid(), first, 'every render went through the same browser')

  t.test('scripts do not run and nothing is fetched', async (t) => {
    let fetched = 0
    const server = createServer((_req, res) => {
      fetched++
      res.end('x')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    t.teardown(() => new Promise((r) => server.close(r)))
    const { port } = server.address() as { port: number }
    const doc = await app.pdf.render(
      page(`<p id="p">statique</p><script>document.getElementById('p').textContent = 'script'</script>` +
        `<img src="http://127.0.0.1:${port}/pixel.png"><link rel="stylesheet" href="http://127.0.0.1:${port}/s.css">`),
    )
    const text = await pdfText(doc)
    t.match(text, /statique/)
    t.notMatch(text, /script/)
    t.equal(fetched, 0)
  })

  t.test('a killed browser is replaced at the next render', async (t) => {
    const pid = app.pdf.browserPid() as number
    process.kill(pid, 'SIGKILL')
    t.ok(await exited(pid), 'the browser is gone')
    const doc = await app.pdf.render(page('<p>Après redémarrage</p>'))
    t.match(await pdfText(doc), /Après redémarrage/)
    const next = app.pdf.browserPid()
    t.type(next, 'number')
    t.not(next, pid)
  })

  t.test('a render in flight when the browser dies is retried on a new one', async (t) => {
    const pid = app.pdf.browserPid() as number
    const big = page('<p>Long document</p>'.repeat(6_000))
    const rendering = app.pdf.render(big)
    setTimeout(() => process.kill(pid, 'SIGKILL'), 50)
    const doc = await rendering
    t.match(await pdfText(doc), /Long document/)
    t.not(app.pdf.browserPid(), pid)
  })
})

t.test('the browser is closed with the app', async (t) => {
  const app = await build(t)
  await app.pdf.render(page('<p>un</p>'))
  const pid = app.pdf.browserPid() as number
  t.ok(alive(pid))
  await app.close()
  t.ok(await exited(pid), 'no Chromium left once the app has closed')
  await t.rejects(app.pdf.render(page('<p>deux</p>')), /closed/)
})

t.test('a render slower than PDF_TIMEOUT_MS fails as a timeout', async (t) => {
  const app = await build(t, { PDF_PAGES: '1', PDF_TIMEOUT_MS: '1000' })
  // One tab: the second render waits for the first, which is far too large for a second.
  const huge = page('<table>' + '<tr><td>ligne</td><td>de facture</td></tr>'.repeat(60_000) + '</table>')
  const results = await Promise.allSettled([app.pdf.render(huge), app.pdf.render(page('<p>petit</p>'))])
  t.equal(results[0].status, 'rejected')
  t.match((results[0] as PromiseRejectedResult).reason, { name: 'PdfTimeoutError' })
  const after = await app.pdf.render(page('<p>ensuite</p>'))
  t.match(await pdfText(after), /ensuite/)
})
