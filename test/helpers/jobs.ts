import type { FastifyInstance } from 'fastify'
import type { JobName } from '../../src/jobs.ts'

/** Sends a job to its queue, wakes this instance's workers, and answers the job once it has ended. */
export async function runJob(app: FastifyInstance, name: JobName, timeoutMs = 15_000) {
  const boss = app.jobs.boss
  if (!boss) throw new Error('jobs are disabled')
  const id = await app.jobs.send(name, {} as never)
  if (!id) throw new Error(`${name}: not queued`)
  app.jobs.wake(name)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const job = await boss.getJobById(name, id)
    if (job?.state === 'completed' || job?.state === 'failed' || Date.now() > deadline) return job
    await new Promise((r) => setTimeout(r, 50))
  }
}
