import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { repo, sentiment } from './paths'

/** Runs `pet ARGS…` (the built CLI) and returns its exit status and output. */
export const pet = (...args: string[]) => spawnSync(process.execPath, [path.join(repo, 'bin/pet.js'), ...args], { encoding: 'utf8', cwd: repo })

/** The JSON summary on the last stdout line. */
export const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!)

/** Lines [from, to) of a sentiment split, as JSONL text. */
export const sentimentLines = (file: string, from: number, to: number) =>
  fs.readFileSync(path.join(sentiment, file), 'utf8').split('\n').slice(from, to).join('\n') + '\n'

/** Starts `pet ARGS…` and kills it (SIGKILL) once OUT/last/state.json records `epoch` finished epochs. */
export async function killAfterEpoch (args: string[], out: string, epoch: number): Promise<void> {
  const child = spawn(process.execPath, [path.join(repo, 'bin/pet.js'), ...args], { cwd: repo, stdio: 'ignore' })
  const state = path.join(out, 'last', 'state.json')
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        if (fs.existsSync(state) && JSON.parse(fs.readFileSync(state, 'utf8')).epoch >= epoch) {
          clearInterval(timer)
          child.kill('SIGKILL')
          resolve()
        }
      } catch {}
    }, 20)
    child.on('exit', () => { clearInterval(timer); reject(new Error('the run ended before it could be interrupted')) })
  })
  await new Promise(resolve => child.on('exit', resolve))
}
