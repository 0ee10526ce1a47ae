import puppeteer from 'puppeteer-core'
import t from 'tap'
import { contract } from '../openapi/index.ts'
import { CHROMIUM_FLAGS } from '../src/pdf.ts'
import { build, listen } from './helpers/build.ts'

t.test('/docs renders the contract in a real browser', async (t) => {
  const app = await build(t)
  const base = await listen(app)
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(String(e)))
  const res = await page.goto(`${base}/docs`, { waitUntil: 'networkidle0' })
  t.equal(res?.status(), 200)
  await page.waitForSelector('.opblock', { timeout: 15_000 })
  const listed = await page.$$eval('.opblock', (blocks) =>
    blocks.map((b) => `${b.querySelector('.opblock-summary-method')?.textContent} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`),
  )
  const expected = contract.map((op) => `${op.method} ${op.url.replace(/:(\w+)/g, '{$1}')}`)
  t.same(listed.sort(), expected.sort(), 'every operation of the contract is listed')
  t.same(errors, [], 'no script error on the page')

  t.equal(await page.title(), 'Armoire — API', 'Armoire’s title, not Swagger UI’s')
  const logo = await page.$eval('.topbar img', (img) => img.getAttribute('src') ?? '')
  t.match(Buffer.from(logo.split(',')[1] ?? '', 'base64').toString(), /Armoire/, 'Armoire’s logo')
  const intro = await page.$eval('.information-container .description', (d) => d.textContent ?? '')
  for (const part of ['Obtenir un jeton', 'Rôles', 'Pagination', 'Erreurs']) t.match(intro, part, `the introduction covers: ${part}`)

  // Authorize with a real token, then call GET /me from the page.
  const register = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: 'docs@exemple.fr', mot_de_passe: 'Swagger-UI-essai-2026', nom: 'Docs', organisation: 'Essai' },
  })
  const { access_token } = register.json()
  await page.click('.auth-wrapper .authorize')
  await page.waitForSelector('.modal-ux input')
  await page.type('.modal-ux input', access_token)
  await page.click('.modal-ux .auth-btn-wrapper .authorize')
  await page.click('.modal-ux .btn-done')
  await page.click('#operations-utilisateurs-getMe .opblock-summary')
  await page.waitForSelector('#operations-utilisateurs-getMe .execute')
  await page.click('#operations-utilisateurs-getMe .execute')
  await page.waitForSelector('#operations-utilisateurs-getMe .live-responses-table tr.response .response-col_status', { timeout: 15_000 })
  const status = await page.$eval('#operations-utilisateurs-getMe .live-responses-table tr.response .response-col_status', (c) => c.textContent?.trim())
  t.equal(status, '200', 'GET /me answers 200 with the token given to Authorize')
})
