/** What other domains may use of the documents domain. */
export { removeShreddedBlobs, type ShreddedFile, shredFile } from './shredding.ts'
