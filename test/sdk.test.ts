import t from 'tap'
import { createArmoireClient } from '../openapi/sdk/index.ts'
import { build, listen } from './helpers/build.ts'

t.test('the generated SDK talks to a real server', async (t) => {
  const app = await build(t)
  const client = createArmoireClient({ baseUrl: await listen(app) })

  const live = await client.GET('/health/live')
  t.equal(live.response.status, 200)
  t.equal(live.data?.status, 'ok')

  const ready = await client.GET('/health/ready')
  t.equal(ready.response.status, 200)
  t.equal(ready.data?.checks.database.status, 'ok')
  t.equal(ready.response.headers.get('x-request-id')?.length, 36)
})
