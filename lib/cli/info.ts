import { systemInfo } from '../system-info'
import { parse } from './args'

export const usage = `pet info
  Prints the LibTorch version, threads, the BLAS library in use and CUDA availability.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, { json: { type: 'boolean' } })
  if (a.help) { console.log(usage); return }
  const info = systemInfo()
  if (a.json) console.log(JSON.stringify(info))
  else for (const [k, v] of Object.entries(info)) console.log(`${k}: ${v}`)
}
