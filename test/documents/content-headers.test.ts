import t from 'tap'
import { parse } from 'content-disposition'
import { cleanMimeType, etagMatches, parseRange } from '../../plugins/documents/content.ts'
import { attachment } from '../../src/attachment.ts'
import { cleanName } from '../../plugins/documents/names.ts'

t.test('parseRange: one range, or the whole content', async (t) => {
  t.same(parseRange(undefined, 100), null)
  t.same(parseRange('bytes=0-9', 100), { start: 0, end: 9 })
  t.same(parseRange('bytes=90-', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=-10', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=-1000', 100), { start: 0, end: 99 }, 'a suffix longer than the content is all of it')
  t.same(parseRange('bytes=50-1000', 100), { start: 50, end: 99 }, 'clipped to the end')
  t.equal(parseRange('bytes=100-', 100), 'unsatisfiable')
  t.equal(parseRange('bytes=-0', 100), 'unsatisfiable')
  t.equal(parseRange('bytes=0-0', 0), 'unsatisfiable', 'nothing to range over in an empty file')
  for (const ignored of ['bytes=0-1,3-4', 'items=0-1', 'bytes=5-2', 'bytes=-', 'bytes=a-b']) t.equal(parseRange(ignored, 100), null, ignored)
})

t.test('etagMatches: weak comparison, lists and *', async (t) => {
  const etag = '"abc"'
  t.ok(etagMatches('"abc"', etag))
  t.ok(etagMatches('W/"abc"', etag))
  t.ok(etagMatches('"x", "abc"', etag))
  t.ok(etagMatches('*', etag))
  t.notOk(etagMatches('"abcd"', etag))
  t.notOk(etagMatches(undefined, etag))
})

t.test('attachment: RFC 6266 by content-disposition, a readable ASCII fallback and the exact name in filename*', async (t) => {
  t.equal(attachment('rapport.pdf'), 'attachment; filename=rapport.pdf', 'a token needs neither quotes nor filename*')
  t.equal(attachment('a;b=c.txt'), 'attachment; filename="a;b=c.txt"', 'separators are quoted')
  t.equal(
    attachment('Réunion "équipe" 100%.docx'),
    `attachment; filename="Reunion _equipe_ 100_.docx"; filename*=UTF-8''R%C3%A9union%20%22%C3%A9quipe%22%20100%25.docx`,
  )
  t.equal(attachment("l'été (1).txt"), `attachment; filename="l'ete (1).txt"; filename*=UTF-8''l%27%C3%A9t%C3%A9%20%281%29.txt`)
  t.equal(attachment('文件.txt'), `attachment; filename=__.txt; filename*=UTF-8''%E6%96%87%E4%BB%B6.txt`, 'not "?", which browsers would offer as a name')
  t.notMatch(attachment('a\\b.txt'), /\\/, 'no backslash reaches the quoted form')
  for (const name of ['Été 2025 – « » rapport ™ (final)*.pdf', 'a\\b "c".txt', '文件.txt', 'rapport.pdf']) {
    t.equal(parse(attachment(name)).parameters.filename, name, `${name} reads back whole`)
  }
})

t.test('cleanName and cleanMimeType', async (t) => {
  t.equal(cleanName('  Cafe\u0301.txt '), 'Café.txt', 'trimmed and NFC')
  t.throws(() => cleanName('a\u0000b'), { code: 'VALIDATION_ERROR' })
  t.throws(() => cleanName('\u0085'), { code: 'VALIDATION_ERROR' }, 'C1 controls too')
  t.equal(cleanName('😀'.repeat(255)).length, 510, '255 characters, not UTF-16 units')
  t.throws(() => cleanName('😀'.repeat(256)))
  t.equal(cleanMimeType('Application/PDF; charset=binary'), 'application/pdf')
  t.equal(cleanMimeType('text/html'), 'text/html')
  t.equal(cleanMimeType('pas un type'), 'application/octet-stream')
  t.equal(cleanMimeType(undefined), 'application/octet-stream')
})
