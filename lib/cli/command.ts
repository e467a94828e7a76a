// A `pet` command is parse -> call -> print: its flags come from the option table (options.ts; `batchSize` is
// --batch-size), their values are checked by the same rules as the library's, the library function runs, and
// the result is printed (with --json, the last stdout line is the result as snake_case JSON).
import { parseArgs } from 'node:util'
import { PetError, resolveModel, type ProgressCallback } from '../index'
import { defaultOf, optionTable, type OptionName, type OptionSpec, type WorkflowSpec } from '../options'
import { snakeKeys } from '../report/snake-keys'
import { optionValue } from '../validate'
import { progress, type Progress } from './progress-bar'

export class UsageError extends PetError {
  constructor (message: string) { super(message, 'EUSAGE') }
}

const cliOnly = new Set(['signal', 'function'])

export const flagOf = (name: OptionName): string =>
  (optionTable[name] as OptionSpec).flag ?? name.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)

/** Human lines go to stdout unless --json; the JSON summary is always the last stdout line. */
export class Output {
  constructor (readonly json: boolean) {}
  line (s: string): void { if (!this.json) process.stdout.write(s + '\n') }
  summary (o: unknown): void { if (this.json) process.stdout.write(JSON.stringify(o) + '\n') }
}

export interface Command<R> {
  name: string
  workflow: WorkflowSpec
  /** what the command does, for --help */
  about: string
  // biome-ignore lint/suspicious/noExplicitAny: each command's workflow takes its own options type
  run: (options: any) => Promise<R>
  /** the human lines (not with --json) */
  print: (result: R, out: Output) => void
  /** keys of the result left out of the --json summary (bulky data) */
  omit?: readonly string[]
}

/** The flag's string value as the option's value; a bad one is a usage error naming the flag. */
function fromFlag (spec: OptionSpec, raw: string | string[] | boolean, flag: string): unknown {
  const name = `--${flag}`
  let value: unknown = raw
  const json = (s: string) => {
    try { return JSON.parse(s) } catch (err) { throw new UsageError(`${name} is not valid JSON: ${(err as Error).message}`) }
  }
  // a string that is not a number stays a string, so the message shows what was typed
  const num = (s: string) => s.trim() === '' || Number.isNaN(Number(s)) ? s : Number(s)
  if (typeof raw === 'string') {
    if (spec.kind === 'integer' || spec.kind === 'number') value = num(raw)
    else if (spec.kind === 'list') value = raw.split(',').map(s => s.trim())
    else if (spec.kind === 'integer-list') value = raw.split(',').map(num)
    else if (spec.kind === 'json-list' || spec.kind === 'verbalizer') value = json(raw)
    // a label map is inline JSON, or the path of a JSON file
    else if (spec.kind === 'label-map') value = raw.trim().startsWith('{') || raw.trim().startsWith('[') ? json(raw) : raw
  }
  try {
    return optionValue(spec, value, name)
  } catch (err) {
    if (err instanceof PetError && err.code === 'EINVAL') throw new UsageError(err.message.replace(/of type number$/, '').trimEnd())
    throw err
  }
}

/**
 * The CLI's flags of a workflow: a command that takes --model also takes --revision, for a model named the hub way.
 * The library's workflows list revision themselves (options.ts); this adds it for the others (bench).
 */
export function cliWorkflow (w: WorkflowSpec): WorkflowSpec {
  if (!w.options.includes('model') || w.options.includes('revision')) return w
  const i = w.options.indexOf('model') + 1
  return { ...w, options: [...w.options.slice(0, i), 'revision', ...w.options.slice(i)] }
}

/**
 * --model given as a hub name (org/name) at --revision -> its snapshot folder in the HF cache, downloaded with a bar
 * per file when missing; the command then gets the folder, and no revision (it is spent). The library's workflows
 * resolve the name themselves (withModelFolder, 'download' events), but bench and the commands without onProgress
 * do not.
 */
export async function hubModel (options: Record<string, unknown>, out: Output): Promise<Record<string, unknown>> {
  const { revision, ...rest } = options
  if (typeof rest.model !== 'string') return rest
  const bars = cliProgress(out)
  try {
    rest.model = await resolveModel(rest.model, { revision: revision as string | undefined, onProgress: e => bars({ kind: 'download', ...e }) })
  } finally {
    bars.stop()
  }
  return rest
}

/** argv -> the workflow's options object (what a library caller would pass), plus --json and --help. */
export function parseFlags (argv: string[], w: WorkflowSpec): { options: Record<string, unknown>, json: boolean, help: boolean } {
  const config: NonNullable<Parameters<typeof parseArgs>[0]>['options'] = { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } }
  const names = w.options.filter(n => !cliOnly.has(optionTable[n].kind))
  for (const n of names) {
    const spec = optionTable[n] as OptionSpec
    config[flagOf(n)] = spec.kind === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: spec.kind === 'strings' }
  }
  let values: Record<string, string | string[] | boolean | undefined>
  try {
    values = parseArgs({ args: argv, options: config, strict: true, allowPositionals: false }).values as typeof values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const options: Record<string, unknown> = {}
  for (const n of names) {
    const raw = values[flagOf(n)]
    if (raw !== undefined) options[n] = fromFlag(optionTable[n], raw, flagOf(n))
  }
  if (values.help !== true) {
    for (const n of w.required ?? []) if (options[n] === undefined) throw new UsageError(`--${flagOf(n)} is required`)
  }
  return { options, json: values.json === true, help: values.help === true }
}

/** The flags of a workflow with their defaults, from the table. */
export function flagUsage (w: WorkflowSpec): string {
  return w.options.filter(n => !cliOnly.has(optionTable[n].kind)).map(n => {
    const spec = optionTable[n] as OptionSpec
    const d = defaultOf(w, n)
    const arg = spec.kind === 'boolean' ? '' : ` ${spec.arg ?? (spec.values ? spec.values.join('|') : spec.kind === 'integer' ? 'N' : 'X')}`
    const help = (w.help as Record<string, string> | undefined)?.[n] ?? spec.help
    const required = (w.required as readonly string[] | undefined)?.includes(n) === true
    const shown = d === undefined ? '' : ` (default ${Array.isArray(d) ? d.join(',') : typeof d === 'object' ? JSON.stringify(d) : String(d)})`
    return `  --${flagOf(n)}${arg}${required ? '  [required]' : ''}\n      ${help}${shown}${spec.kind === 'strings' ? '; repeat the flag' : ''}`
  }).join('\n') + '\n  --json\n      the last stdout line is the result as JSON\n  --help'
}

export function usageOf (c: Pick<Command<unknown>, 'name' | 'workflow' | 'about'>): string {
  return `pet ${c.name} [options]\n  ${c.about.split('\n').join('\n  ')}\n\n${flagUsage(cliWorkflow(c.workflow))}`
}

/** Progress events as bars with ETA on stderr (terminals only) and stage lines on stdout. */
export function cliProgress (out: Output): ProgressCallback & { stop: () => void } {
  let bar: Progress | undefined
  let name = ''
  const stop = (): void => { bar?.stop(); bar = undefined }
  const onEvent: ProgressCallback = e => {
    if (e.kind === 'stage') { stop(); out.line(e.message); return }
    if (e.kind === 'epoch') return
    // a bar per kind of pass, and per file of a download
    const label = e.kind === 'download' ? `download ${e.file}` : e.kind
    if (bar === undefined || name !== label || (e.kind !== 'download' && e.done <= 1)) {
      bar?.stop()
      name = label
      bar = progress(label, e.total, { quiet: out.json })
    }
    bar.update(e.done, e.kind === 'train' ? { epoch: `${e.epoch}/${e.epochs}`, loss: e.loss.toFixed(4) } : undefined)
    if (e.done >= e.total) stop()
  }
  return Object.assign(onEvent, { stop })
}

/** The command's entry: parse, call, print. */
export function command<R> (c: Command<R>): { run: (argv: string[]) => Promise<void>, usage: string } {
  const usage = usageOf(c)
  return {
    usage,
    async run (argv: string[]) {
      const parsed = parseFlags(argv, cliWorkflow(c.workflow))
      if (parsed.help) { console.log(usage); return }
      const out = new Output(parsed.json)
      const options = await hubModel(parsed.options, out)
      const takesProgress = (c.workflow.options as readonly string[]).includes('onProgress')
      const result = await c.run(takesProgress ? { ...options, onProgress: cliProgress(out) } : options)
      c.print(result, out)
      const omit = new Set(['history', 'predictions', 'labelBreakdown', ...(c.omit ?? [])])
      out.summary(snakeKeys(Object.fromEntries(Object.entries(result as object).filter(([k]) => !omit.has(k)))))
    }
  }
}

export const fmt = (x: number | null | undefined): string => typeof x === 'number' ? x.toFixed(4) : '—'
