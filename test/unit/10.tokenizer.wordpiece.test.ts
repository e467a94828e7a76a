import t from 'tap'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { WordPieceTokenizer } from '../../lib/tokenizer/wordpiece'
import { fixtures, shared } from '../helpers/paths'

const vocabPath = path.join(shared, 'models/zh-mini-mlm/vocab.txt')
const fixturePath = path.join(fixtures, 'tokenizer_reference.json')

interface RefCase {
  input_ids: number[]
  tokens: string[]
}

const tok = WordPieceTokenizer.fromFile(vocabPath)

/** The message of the Error that `fn` throws; undefined when it does not throw. */
function thrownMessage(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof Error ? err.message : `non-Error thrown: ${String(err)}`
  }
  return undefined
}

t.test('vocabulary and special ids', async (t) => {
  t.equal(tok.vocabSize, 21128)
  t.equal(tok.padId, 0)
  t.equal(tok.unkId, 100)
  t.equal(tok.clsId, 101)
  t.equal(tok.sepId, 102)
  t.equal(tok.maskId, 103)
  t.equal(tok.specialId('[MASK]'), 103)
  t.equal(tok.tokenToId('很'), 2523)
  t.equal(tok.idToToken(2523), '很')
  t.equal(tok.tokenToId('no-such-token'), undefined)
  t.equal(tok.idToToken(-1), undefined)
  t.equal(tok.idToToken(21128), undefined)
  t.equal(tok.idToToken(1.5), undefined)
  // HF trims trailing whitespace of vocab lines: line 343 " " is "" and line 13502 "## " is "##".
  t.equal(tok.idToToken(343), '')
  t.equal(tok.tokenToId('##'), 13502)
})

t.test('HF reference fixture: every case exact', async (t) => {
  const ref = JSON.parse(fs.readFileSync(fixturePath, 'utf8')) as Record<string, RefCase>
  const cases = Object.entries(ref)
  t.equal(cases.length, 46, 'fixture has 46 cases')
  for (const [text, want] of cases) {
    t.same(['[CLS]', ...tok.tokenize(text), '[SEP]'], want.tokens, `tokens of ${JSON.stringify(text)}`)
    t.same([tok.clsId, ...tok.encode(text), tok.sepId], want.input_ids, `ids of ${JSON.stringify(text)}`)
  }
})

t.test('fromFile errors name the path', async (t) => {
  const missing = path.join(os.tmpdir(), `no-such-dir-${process.pid}`, 'vocab.txt')
  t.match(thrownMessage(() => WordPieceTokenizer.fromFile(missing)), missing, `error names ${missing}`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wordpiece-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const empty = path.join(dir, 'empty.txt')
  fs.writeFileSync(empty, '')
  t.match(thrownMessage(() => WordPieceTokenizer.fromFile(empty)), empty, `error names ${empty}`)
  const blank = path.join(dir, 'blank.txt')
  fs.writeFileSync(blank, '\n\n')
  t.match(thrownMessage(() => WordPieceTokenizer.fromFile(blank)), blank, `error names ${blank}`)
})

t.test('specialId throws naming the token', async (t) => {
  t.match(thrownMessage(() => tok.specialId('[NOPE]')), '[NOPE]', 'error names [NOPE]')
  const small = new WordPieceTokenizer(['[UNK]', 'a'])
  t.match(thrownMessage(() => small.maskId), '[MASK]', 'error names [MASK]')
  t.same(small.tokenize('a b'), ['a', '[UNK]'])
})

t.test('word length limit counts code points', async (t) => {
  t.same(tok.tokenize('a'.repeat(101)), ['[UNK]'], '101 chars: [UNK]')
  t.not(tok.tokenize('a'.repeat(100))[0], '[UNK]', '100 chars: pieces')
  t.same(tok.encode('a'.repeat(101)), [tok.unkId])
  // 100 non-BMP letters are 200 UTF-16 units but 100 characters: not over the limit.
  const small = new WordPieceTokenizer(['[UNK]', '𝒜', '##𝒜'])
  t.same(small.tokenize('𝒜'.repeat(100)), ['𝒜', ...Array<string>(99).fill('##𝒜')])
  t.same(small.tokenize('𝒜'.repeat(101)), ['[UNK]'])
  const limited = new WordPieceTokenizer(['[UNK]', 'ab', '##c'], { maxInputCharsPerWord: 3 })
  t.same(limited.tokenize('abc abcc'), ['ab', '##c', '[UNK]'])
})

t.test('non-BMP characters are never split into surrogate halves', async (t) => {
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
  for (const text of ['😀', '👍👍', 'a😀b', '𠀀𠀁', '𠀀x', 'x👍y', '𝒜𝒜𝒜']) {
    for (const piece of tok.tokenize(text)) t.notMatch(piece, lone, `${JSON.stringify(text)}: ${JSON.stringify(piece)}`)
  }
  t.same(tok.tokenize('👍'), ['👍'])
  t.same(tok.tokenize('𠀀'), ['[UNK]'], 'CJK Ext B: padded, unknown')
  // A vocabulary with a non-BMP piece and a matching continuation piece.
  const small = new WordPieceTokenizer(['[UNK]', '😀', '##😀', 'a', '##a', '##b'])
  t.same(small.tokenize('😀😀a'), ['😀', '##😀', '##a'])
  t.same(small.tokenize('a😀b'), ['a', '##😀', '##b'])
  t.same(small.tokenize('😀x'), ['[UNK]'])
  // Lone surrogates (not valid Unicode scalars) are dropped by the cleaner.
  t.same(small.tokenize('a\ud800 a'), ['a', 'a'])
})

t.test('normalizer and pre-tokenizer details', async (t) => {
  const small = new WordPieceTokenizer(['[UNK]', '[MASK]', '[', ']', 'mask', 'σ', '##σ', 'ο', '##ο', 'x', '##x'])
  // Rust's char::to_lowercase has no final-sigma rule: Σ is always σ.
  t.same(small.tokenize('ΟΣ'), ['ο', '##σ'])
  // Special tokens are case-sensitive and cut out of the raw text; other text is not.
  t.same(small.tokenize('x[MASK]x'), ['x', '[MASK]', 'x'])
  t.same(small.tokenize('[mask]'), ['[', 'mask', ']'])
  t.same(small.tokenize('[MASK'), ['[', 'mask'])
  const plain = new WordPieceTokenizer(['[UNK]', '[MASK]', '[', ']', 'mask'], { splitSpecialTokens: false })
  t.same(plain.tokenize('[MASK]'), ['[', 'mask', ']'])
  // Control chars are dropped (word joins), \v and \f are controls too, White_Space (NBSP, ideographic) splits.
  t.same(small.tokenize('x\u0007x x\u000bx x\u00a0x x\u3000x'), ['x', '##x', 'x', '##x', 'x', 'x', 'x', 'x'])
  // Private-use (Co) is dropped, like Rust's is_other.
  t.same(small.tokenize('x\ue000x'), ['x', '##x'])
  // No lowercase: accents kept, case kept.
  const cased = new WordPieceTokenizer(['[UNK]', 'É', 'é', 'e'], { lowercase: false })
  t.same(cased.tokenize('É é'), ['É', 'é'])
  const casedStrip = new WordPieceTokenizer(['[UNK]', 'E', 'e'], { lowercase: false, stripAccents: true })
  t.same(casedStrip.tokenize('É é'), ['E', 'e'])
  // handleChineseChars off: CJK runs stay one word.
  const noCjk = new WordPieceTokenizer(['[UNK]', '北京', '北', '##京'], { handleChineseChars: false })
  t.same(noCjk.tokenize('北京'), ['北京'])
  t.same(tok.tokenize('北京'), ['北', '京'])
  t.same(tok.tokenize(''), [])
  t.same(tok.encode(' \t\n '), [])
})
