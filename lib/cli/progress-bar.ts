// Progress bars with ETA on stderr, for every scoring and training run; silent when asked (--json) or when
// stderr is not a terminal, so logs and pipes stay clean.
import { SingleBar, Presets } from 'cli-progress'

export interface Progress {
  update (done: number, payload?: Record<string, string | number>): void
  stop (): void
}

const silent: Progress = { update () {}, stop () {} }

export function progress (label: string, total: number, { quiet = false } = {}): Progress {
  if (quiet || !process.stderr.isTTY || total <= 0) return silent
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {info}`,
    hideCursor: true,
    etaBuffer: 50
  }, Presets.shades_classic)
  bar.start(total, 0, { info: '' })
  return {
    update (done, payload) { bar.update(done, { info: payload ? Object.entries(payload).map(([k, v]) => `${k} ${v}`).join(' ') : '' }) },
    stop () { bar.stop() }
  }
}
