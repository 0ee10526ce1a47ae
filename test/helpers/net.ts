/** A TCP port of the loopback that nothing listens on, for servers that cannot take port 0. */
export { anyFreePort as freePort } from '../../src/embedded-postgres.ts'
