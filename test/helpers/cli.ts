import { spawnSync } from 'node:child_process'
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
