/** The one error class the library throws for bad input, bad files and native failures. */
export class PetError extends Error {
  /** a stable machine-readable kind */
  readonly code: string
  constructor (message: string, code = 'EPET', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PetError'
    this.code = code
  }
}

/** Rethrows anything thrown by the native core as a PetError with the same message. */
export function nativeError (err: unknown, context?: string): PetError {
  if (err instanceof PetError) return err
  const msg = err instanceof Error ? err.message : String(err)
  return new PetError(context ? `${context}: ${msg}` : msg, 'ENATIVE', { cause: err })
}
