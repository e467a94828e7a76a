// What a trained model directory needs to predict again: written as pet.json beside the weights.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { PetError } from '../errors'
import type { LabelScoreOptions } from './label-scores'

/** pet.json: what a trained model directory needs to predict again (the head, labels, pattern, verbalizer, scoring). */
export interface PetTask {
  /** 'pet': cloze + verbalizer on the MLM head; 'classifier': the [CLS] head */
  mode: 'pet' | 'classifier'
  labels: string[]
  pattern?: string
  verbalizer?: Record<string, string[]>
  labelScores?: LabelScoreOptions
  maxLength: number
  /** the text field(s) the pattern reads, or 'text' for the classifier */
  fields: string[]
}

/** Writes a model directory's pet.json. */
export function writeTask (dir: string, task: PetTask): void {
  fs.writeFileSync(path.join(dir, 'pet.json'), JSON.stringify(task, null, 2) + '\n')
}

/**
 * A model directory's pet.json; undefined where there is none (a base model), an EDATA PetError where it is not JSON.
 */
export function readTask (dir: string): PetTask | undefined {
  const file = path.join(dir, 'pet.json')
  if (!fs.existsSync(file)) return undefined
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PetTask
  } catch (err) {
    throw new PetError(`${file}: invalid JSON (${(err as Error).message})`, 'EDATA')
  }
}
