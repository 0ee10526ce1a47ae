/** What other domains may use of the documents domain; nothing else of it is imported from outside. */
export { ALGORITHM, contentDisposition, etagMatches, keyAad, openPlaintext, parseRange, seal, UnreadableContent } from './content.ts'
export type { Sealed } from './content.ts'
export { exportTree, versionExists } from './export.ts'
export type { ExportedContainer, ExportedFile, ExportedTree, ExportedVersion, ExportTarget } from './export.ts'
export { removeShreddedBlobs, type ShreddedFile, shredFile } from './shredding.ts'
export { usage } from './storage.ts'
