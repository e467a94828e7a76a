// What a long call reports while it runs (to the caller's onProgress, never to a terminal), and how it stops
// when the caller's AbortSignal fires.
import { PetError } from './errors'

/** What a long call reports to `onProgress` while it runs: a stage, scoring progress, a training step, an epoch's end. */
export type ProgressEvent =
  /** a phase begins, e.g. "pattern 2/5: [MASK]好。{text}" */
  | { kind: 'stage', message: string }
  /** examples scored so far in the current scoring pass */
  | { kind: 'score', done: number, total: number }
  /** optimizer steps done so far in the current training run */
  | { kind: 'train', done: number, total: number, epoch: number, epochs: number, loss: number }
  /** an epoch ended (dev: its dev accuracy; best: it is the best so far and was saved) */
  | { kind: 'epoch', epoch: number, epochs: number, loss: number, dev?: number, best: boolean }
  /** bytes of one file of a hub-named model downloaded so far (resolveModel's DownloadProgress) */
  | { kind: 'download', file: string, done: number, total: number }

/** The `onProgress` option of every long call. */
export type ProgressCallback = (event: ProgressEvent) => void

/** What every long call takes besides its own options. */
export interface Control {
  signal?: AbortSignal
  onProgress?: ProgressCallback
}

/** Throws the PetError of a cancelled call (code EABORT) when the signal has fired. */
export function throwIfAborted (signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted === true) throw abortError(what)
}

export function abortError (what: string): PetError {
  return new PetError(`${what} was aborted`, 'EABORT')
}
