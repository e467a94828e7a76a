import { systemInfo } from '../advanced'
import { parseFlags, Output } from './command'

export const usage = `pet info [--json]
  Prints the LibTorch version, threads, the BLAS library in use and CUDA availability.`

export async function run (argv: string[]): Promise<void> {
  const a = parseFlags(argv, { name: 'info', options: [] })
  if (a.help) { console.log(usage); return }
  const info = systemInfo()
  new Output(a.json).summary(info)
  if (!a.json) for (const [k, v] of Object.entries(info)) console.log(`${k}: ${v}`)
}
