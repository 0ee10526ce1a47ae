// The package ships no types; this covers what the S3 driver test uses.
declare module '@20minutes/s3rver' {
  import type { AddressInfo, Server } from 'node:net'

  interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    directory?: string
    resetOnClose?: boolean
    configureBuckets?: { name: string }[]
    allowMismatchedSignatures?: boolean
  }

  export default class S3rver {
    constructor(options?: S3rverOptions)
    run(): Promise<AddressInfo>
    close(): Promise<void>
    httpServer: Server
  }
}
