// Tokenization throughput: our WordPiece (vocab.txt) beside @huggingface/tokenizers (tokenizer.json: WordPiece,
// byte-level BPE, Unigram) on the same texts, same run. scripts/bench-tokenizers.js prints it.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { HfTokenizer, WordPieceTokenizer, type Tokenizer } from '../advanced'

export interface TokenizerBenchRow {
  name: string
  /** first pass over the texts on a fresh tokenizer / a second pass (caches warm) */
  coldTextsPerSec: number
  warmTextsPerSec: number
  tokens: number
}

/** Texts of JSONL files (field `text`). */
export function readTexts (files: readonly string[]): string[] {
  return files.flatMap(f => fs.readFileSync(f, 'utf8').split('\n').filter(l => l.trim() !== '').map(l => (JSON.parse(l) as { text: string }).text))
}

function pass (tok: Tokenizer, texts: readonly string[]): { ms: number, tokens: number } {
  const t0 = process.hrtime.bigint()
  let tokens = 0
  for (const s of texts) tokens += tok.encode(s).length
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, tokens }
}

/** `families`: folders with tokenizer.json (and vocab.txt for the WordPiece row). */
export function benchTokenizers (texts: readonly string[], families: string): TokenizerBenchRow[] {
  const makers: Array<[string, () => Tokenizer]> = [
    ['ours: WordPiece (vocab.txt)', () => WordPieceTokenizer.fromFile(path.join(families, 'tiny-albert/vocab.txt'), { splitSpecialTokens: false })],
    ['@huggingface/tokenizers: WordPiece (tokenizer.json)', () => HfTokenizer.fromDir(path.join(families, 'tiny-albert'))],
    ['@huggingface/tokenizers: byte-level BPE (tiny-roberta)', () => HfTokenizer.fromDir(path.join(families, 'tiny-roberta'))],
    ['@huggingface/tokenizers: Unigram (tiny-xlmr)', () => HfTokenizer.fromDir(path.join(families, 'tiny-xlmr'))]
  ]
  return makers.map(([name, make]) => {
    const tok = make()
    const cold = pass(tok, texts)
    const warm = pass(tok, texts)
    return { name, coldTextsPerSec: texts.length / (cold.ms / 1000), warmTextsPerSec: texts.length / (warm.ms / 1000), tokens: cold.tokens }
  })
}
