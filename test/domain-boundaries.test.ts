import { ESLint } from 'eslint'
import t from 'tap'

const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname })

async function refused(filePath: string, from: string): Promise<boolean> {
  const [result] = await eslint.lintText(`import { x } from '${from}'\nexport const y = x\n`, { filePath })
  return (result?.messages ?? []).some((m) => m.ruleId === 'no-restricted-imports')
}

t.test('a domain reaches another only through its public.ts', async (t) => {
  t.ok(await refused('plugins/documents/probe.ts', '../security/users.ts'))
  t.ok(await refused('plugins/documents/sub/probe.ts', '../../security/tokens.ts'))
  t.ok(await refused('plugins/security/probe.ts', '../../plugins/documents/tree.ts'))
  t.notOk(await refused('plugins/documents/probe.ts', '../security/public.ts'))
  t.notOk(await refused('plugins/documents/probe.ts', './tree.ts'), 'its own files are its own')
})

t.test('the kernel uses a domain only through its public.ts; src/app.ts registers them', async (t) => {
  t.ok(await refused('src/probe.ts', '../plugins/documents/tree.ts'))
  t.ok(await refused('scripts/probe.ts', '../plugins/documents/content.ts'))
  t.ok(await refused('src/app.ts', '../plugins/documents/tree.ts'))
  t.notOk(await refused('src/app.ts', '../plugins/documents/index.ts'))
  t.notOk(await refused('scripts/probe.ts', '../plugins/documents/public.ts'))
})

t.test('the tree as it is keeps to the boundaries', async (t) => {
  const results = await eslint.lintFiles(['plugins', 'src', 'openapi', 'db', 'scripts'])
  const crossings = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${r.filePath}:${m.line}`))
  t.same(crossings, [])
})
