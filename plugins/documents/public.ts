/** What other domains may ask of the documents domain. */
export { usage } from './storage.ts'
