/** What the rest of Armoire may use of the billing domain: nothing else of it is imported from outside. */
export { createCreditNote } from './credit-notes.ts'
