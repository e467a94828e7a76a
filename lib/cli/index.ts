// `pet` entry point: dispatches subcommands. The only place that sets the exit code.
import { PetError } from '../errors'
import { UsageError } from './command'

type Command = { run: (argv: string[]) => Promise<void>, usage: string }

const commands: Record<string, () => Command> = {
  tokenize: () => require('./tokenize'),
  'zero-shot': () => require('./zero-shot'),
  bench: () => require('./bench'),
  train: () => require('./train'),
  finetune: () => require('./finetune'),
  predict: () => require('./predict'),
  pretrain: () => require('./pretrain'),
  ensemble: () => require('./ensemble'),
  distill: () => require('./distill'),
  ipet: () => require('./ipet'),
  ptune: () => require('./ptune'),
  info: () => require('./info')
}

/**
 * The CLI reference as Markdown: every command's usage (its flags, types, ranges and defaults come from the options
 * table). docs/cli.md holds it below its marker line; test/70 checks that it is current (`pet help --markdown`).
 */
export function cliReference (): string {
  return Object.entries(commands).map(([name, load]) => `### pet ${name}\n\n\`\`\`\n${load().usage.trim()}\n\`\`\`\n`).join('\n')
}

function help (): string {
  return 'usage: pet <command> [options]   (pet <command> --help for its options)\n\ncommands:\n' +
    Object.keys(commands).map(c => `  ${c}`).join('\n')
}

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === 'help' && rest[0] === '--markdown') {
    process.stdout.write(cliReference())
    return 0
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(help())
    return name === undefined ? 2 : 0
  }
  const load = commands[name]
  if (!load) {
    console.error(`pet: unknown command '${name}'\n${help()}`)
    return 2
  }
  try {
    await load().run(rest)
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`pet ${name}: ${err.message}\n\n${load().usage}`)
      return 2
    }
    if (err instanceof PetError) {
      console.error(`pet ${name}: ${err.message}`)
      return 1
    }
    console.error(`pet ${name}: unexpected error`)
    console.error(err)
    return 1
  }
}
