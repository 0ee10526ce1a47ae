/** What the rest of Armoire may use of the stats domain: nothing else of it is imported from outside. */
export { rebuildAll } from './counters.ts'
