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
})
