import t from 'tap'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { readTokenizer } from '../../lib/model-folder'
import { Pattern } from '../../lib/pet/pattern'
import { Verbalizer } from '../../lib/pet/verbalizer'
import { promptPattern, promptRows } from '../../lib/ptuning/prompt'
import { HfTokenizer } from '../../lib/tokenizer/hf-tokenizer'
import { WordPieceTokenizer } from '../../lib/tokenizer/wordpiece'
import { fixtures } from '../helpers/paths'

const families = path.join(fixtures, 'families')
const names = ['tiny-roberta', 'tiny-xlmr', 'tiny-albert', 'tiny-ernie']

interface Cases {
  cases: Array<{ text: string, ids: number[], tokens: string[] }>
  pair_case: { a: string, b: string, ids: number[] }
}

const toks = new Map(names.map(n => [n, HfTokenizer.fromDir(path.join(families, n))]))
const tok = (n: string) => toks.get(n)!

for (const name of names) {
  t.test(`${name}: every fixture case and the pair give HF's ids`, t => {
    const fx = JSON.parse(fs.readFileSync(path.join(families, `${name}_tokenizer_cases.json`), 'utf8')) as Cases
    const hf = tok(name)
    t.equal(fx.cases.length, 20)
    for (const c of fx.cases) {
      t.same(hf.encodeWithSpecials(c.text), c.ids, `HF ids of ${JSON.stringify(c.text)}`)
      t.same(hf.encodeWithSpecials(c.text).map(id => hf.idToToken(id)), c.tokens, 'tokens')
      // the plain path (what patterns use): cls + encode + sep, where the text types no special token
      if (!/<s>|<\/s>|<mask>|<pad>|<unk>|\[(CLS|SEP|MASK|PAD|UNK)\]/.test(c.text)) {
        t.same([hf.clsId, ...hf.encode(c.text), hf.sepId], c.ids, `plain ids of ${JSON.stringify(c.text)}`)
      }
    }
    t.same(hf.encodeWithSpecials(fx.pair_case.a, fx.pair_case.b), fx.pair_case.ids, 'pair')
    t.end()
  })
}

t.test('special tokens come from the model files, not BERT names', t => {
  for (const n of ['tiny-roberta', 'tiny-xlmr']) {
    const hf = tok(n)
    t.same([hf.clsId, hf.padId, hf.sepId, hf.unkId, hf.maskId], [0, 1, 2, 3, 4], n)
    t.equal(hf.specialToken('cls'), '<s>')
    t.equal(hf.specialId('[SEP]'), 2, 'pattern [SEP] is the sep token')
    t.ok(hf.spaceSensitive, 'ByteLevel / Metaspace')
  }
  for (const n of ['tiny-albert', 'tiny-ernie']) {
    const hf = tok(n)
    t.same([hf.clsId, hf.sepId, hf.maskId, hf.padId, hf.unkId], [101, 102, 103, 0, 100], n)
    t.notOk(hf.spaceSensitive)
  }
  // a tokenizer.json whose files name no mask token: a PetError when it is used
  const json = JSON.parse(fs.readFileSync(path.join(families, 'tiny-roberta/tokenizer.json'), 'utf8'))
  json.added_tokens = json.added_tokens.filter((a: { content: string }) => a.content !== '<mask>')
  const bare = new HfTokenizer(json, {}, 'x/tokenizer.json')
  t.equal(bare.clsId, 0, 'cls from the post-processor')
  t.throws(() => bare.maskId, { name: 'PetError', message: /no mask token/ })
  t.end()
})

t.test('a special token typed in the text stays text', t => {
  const roberta = tok('tiny-roberta')
  // = HF AutoTokenizer.from_pretrained(dir, split_special_tokens=True)(s, add_special_tokens=False), transformers 5.18
  t.same(roberta.encode('a <mask> b</s>'), [69, 225, 32, 81, 2486, 79, 34, 887, 32, 19, 87, 34])
  t.same(roberta.encode('好<s>的 [MASK]'), [316, 32, 87, 34, 265, 1748, 4819, 55, 47, 65])
  t.same(roberta.encode('x<pad>y'), [92, 32, 84, 2231, 34, 93])
  const albert = tok('tiny-albert')
  t.same(albert.encode('好<s>的 [MASK]'), [1962, 133, 161, 135, 4638, 138, 9622, 8998, 140])
  // the full tokenizer (HF's default) does split them out
  t.same(roberta.encodeWithSpecials('x<pad>y'), [0, 92, 1, 93, 2])
  // Unigram: HF's split_special_tokens=True still matches the vocabulary's own "<mask>" piece; ours never does
  const xlmr = tok('tiny-xlmr')
  for (const s of ['a <mask> b</s>', '好<s>的 [MASK]', 'x<pad>y']) {
    t.notOk(xlmr.encode(s).some(id => id <= 4), `no special id in ${s}`)
  }
  t.same(xlmr.encode('a b'), xlmr.encodeWithSpecials('a b').slice(1, -1), 'ordinary text as HF')
  t.end()
})

t.test('label words are tokenized as they stand in the filled-in pattern', t => {
  const roberta = tok('tiny-roberta')
  const fill = (source: string, text: string, word: string) => {
    const pattern = new Pattern(source)
    const v = new Verbalizer({ a: [word], b: ['zzz'] }, roberta, pattern)
    const ids = v.words[0][0].ids
    const enc = pattern.encode({ text }, roberta, 64, ids.length)
    const out = enc.inputIds.slice()
    enc.maskPositions.forEach((p, i) => { out[p] = ids[i] })
    return out
  }
  // HF: tokenizer("The movie was fine. It was great.") and "... terrible." (transformers 5.18)
  t.same(fill('{text} It was [MASK].', 'The movie was fine.', 'great'), [0, 2547, 1689, 1988, 73, 997, 2486, 640, 1958, 18, 5191, 997, 2486, 225, 75, 504, 416, 18, 2])
  t.same(fill('{text} It was [MASK].', 'The movie was fine.', 'terrible'), [0, 2547, 1689, 1988, 73, 997, 2486, 640, 1958, 18, 5191, 997, 2486, 427, 488, 86, 77, 2145, 18, 2])
  // joined to what precedes it: bare (HF: tokenizer("不错这是很。"))
  t.same(fill('{text}这是[MASK]。', '不错', '很'), [0, 596, 1340, 340, 273, 2])
  t.equal(new Pattern('{text} It was [MASK].').maskContext, 'space')
  t.equal(new Pattern('{text}这是[MASK]。').maskContext, 'joined')
  t.throws(() => new Verbalizer({ a: ['great'], b: ['bad'] }, roberta, [new Pattern('{text} It was [MASK].'), new Pattern('{text}:[MASK]')]), /differ in whether a space/)
  // WordPiece: unchanged whatever the context
  const wp = WordPieceTokenizer.fromFile(path.join(families, 'tiny-albert/vocab.txt'), { splitSpecialTokens: false })
  const a = new Verbalizer({ p: ['很'], n: ['不'] }, wp, new Pattern('{text} 是 [MASK]。'))
  const b = new Verbalizer({ p: ['很'], n: ['不'] }, wp)
  t.same(a.words, b.words)
  t.same(new Pattern('{text} 是 [MASK]。').encode({ text: '好' }, wp, 16), new Pattern('{text} 是[MASK]。').encode({ text: '好' }, wp, 16))
  t.end()
})

t.test('XLM-R (Metaspace): a label word has the ids HF gives it inside the filled-in string, "▁" only where HF has one', t => {
  const xlmr = tok('tiny-xlmr')
  /** the label word's ids, and the filled-in sequence up to and with the word */
  const fill = (source: string, text: string, word: string) => {
    const pattern = new Pattern(source)
    const ids = new Verbalizer({ a: [word], b: ['zzz'] }, xlmr, pattern).words[0][0].ids
    const enc = pattern.encode({ text }, xlmr, 64, ids.length)
    const out = enc.inputIds.slice()
    enc.maskPositions.forEach((p, i) => { out[p] = ids[i] })
    return { ids, upToWord: out.slice(0, enc.maskPositions[0] + ids.length), all: out }
  }
  // HF: AutoTokenizer.from_pretrained('tiny-xlmr')(whole string) (transformers 5.18); "▁" is id 6, 很 30, 非常 198
  const joined = fill('{text}这是[MASK]。', '不错', '很')
  t.same(joined.ids, [30], 'joined to the pattern text: 很, no "▁" (HF: ▁ 不错 这是 很 。)')
  t.same(joined.upToWord, [0, 6, 546, 689, 30], "HF's ids of 不错这是很。 up to the word")
  t.same(fill('{text}这是[MASK]。', '不错', '非常').ids, [198], 'a word of one piece stays one token (alone: ▁ 非常)')
  t.same(fill('{text}[MASK]', '服务好', '很').all, [0, 6, 160, 21, 30, 2], 'right after the text: HF\'s whole 服务好很')
  // at the start of the sequence and after a special token, HF does prepend "▁"
  const start = fill('[MASK]{text}', '服务好', '很')
  t.same(start.ids, [6, 30], 'at the start: ▁ 很 (HF: ▁ 很 服务 好)')
  t.same(start.upToWord, [0, 6, 30])
  const afterSep = fill('{text}[SEP][MASK]。', '服务好', '很')
  t.same(afterSep.ids, [6, 30], 'after [SEP]: ▁ 很 (HF: 服务好</s>很。 → ▁ 服务 好 </s> ▁ 很 。)')
  t.same(afterSep.upToWord, [0, 6, 160, 21, 2, 6, 30])
  // English: "It wasgreat." (joined) vs "It was great." (after a space)
  const was = [0, 6, 1550, 6, 107, 109, 474, 87, 41, 6, 571, 125, 49, 6, 293, 562, 41, 23, 6, 176, 75, 6, 571, 125, 49]
  t.same(fill('{text}. It was[MASK].', 'The movie was fine', 'great').upToWord, [...was, 416, 263, 41, 125, 75], 'HF: … It wasgreat.')
  t.same(fill('{text}. It was [MASK].', 'The movie was fine', 'great').upToWord, [...was, 6, 416, 263, 41, 125, 75], 'HF: … It was great.')
  t.equal(new Pattern('[MASK]{text}').maskContext, 'start')
  t.equal(new Pattern('{text}[SEP][MASK]。').maskContext, 'start')
  t.equal(new Pattern('{text}[MASK]').maskContext, 'joined')
  // patterns that place the word differently: an error where its ids differ (XLM-R), none where they agree (byte-level BPE)
  t.throws(() => new Verbalizer({ a: ['很'], b: ['不'] }, xlmr, [new Pattern('{text}这是[MASK]。'), new Pattern('[MASK]{text}')]),
    { name: 'PetError', code: 'EPATTERN', message: /'\{text\}这是\[MASK\]。', '\[MASK\]\{text\}' differ .* the label word '很' has other tokens there/ })
  const both = new Verbalizer({ a: ['great'], b: ['bad'] }, tok('tiny-roberta'), [new Pattern('{text}:[MASK]'), new Pattern('[MASK]{text}')])
  t.same(both.words[0][0].ids, tok('tiny-roberta').encode('great'), 'RoBERTa: joined and at the start alike, no error')
  // a plain word that is also a vocabulary entry is text (很 above); one written with the space mark is that token
  t.equal(xlmr.tokenToId('很'), 30)
  const roberta = tok('tiny-roberta')
  const marked = [...Array(roberta.vocabSize).keys()].map(i => roberta.idToToken(i) ?? '').find(x => x.startsWith('\u0120') && x.length > 2)!
  t.same(new Verbalizer({ a: [marked], b: ['zzz'] }, roberta, new Pattern('{text} is [MASK]')).words[0][0].ids, [roberta.tokenToId(marked)], `${marked}: its own id`)
  t.end()
})

t.test('a pattern gives the ids HF gives for the whole filled-in string (Metaspace: no "▁" where text continues text)', t => {
  const cases: Array<[string, Record<string, string>]> = [
    ['{text}。这是[MASK]。', { text: '服务很好' }],
    ['评论：{text}。[MASK]好', { text: '不错' }],
    ['{text_a}，{text_b}[SEP][MASK]。', { text_a: 'good movie', text_b: '很好' }],
    ['{text}. It was[MASK].', { text: 'The movie was fine' }]
  ]
  for (const name of names) {
    const tk = tok(name)
    for (const [source, fields] of cases) {
      // the string HF would get: fields filled in, [MASK]/[SEP] as the model's own tokens
      const whole = source.replace(/\{(\w+)\}/g, (_, f: string) => fields[f])
        .replace('[MASK]', tk.specialToken('mask')!).replace('[SEP]', tk.specialToken('sep')!)
      t.same(new Pattern(source).encode(fields, tk, 64).inputIds, tk.encodeWithSpecials(whole), `${name}: ${source}`)
    }
  }
  // the leading "▁" of the sequence's first text stays (HF prepends it there): XLM-R's ▁ is id 6
  t.equal(new Pattern('{text}[MASK]').encode({ text: 'good' }, tok('tiny-xlmr'), 16).inputIds[1], 6)
  t.end()
})

t.test('prompt tokens: [unusedN] where the vocabulary has them, else the last non-special ids', t => {
  const roberta = tok('tiny-roberta')
  const rows = promptRows(new Pattern(promptPattern(4, 'around')), roberta)
  t.same(rows, [5999, 5998, 5997, 5996])
  t.same(new Pattern(promptPattern(2, 'prefix')).encode({ text: 'x' }, roberta, 16).inputIds, [0, 5999, 5998, 4, 92, 2])
  t.same(new Verbalizer({ a: ['[unused3]'], b: ['[unused4]'] }, roberta).words.flat().map(w => w.ids), [[5997], [5996]])
  t.same(promptRows(new Pattern(promptPattern(2, 'prefix')), tok('tiny-albert')), [1, 2], 'BERT vocabulary: its own [unused1], [unused2]')
  t.end()
})

t.test('model folder tokenizer: vocab.txt, else tokenizer.json, else an error naming both', t => {
  t.ok(readTokenizer(path.join(families, 'tiny-albert')) instanceof WordPieceTokenizer)
  t.ok(readTokenizer(path.join(families, 'tiny-roberta')) instanceof HfTokenizer)
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-tok-'))
  t.throws(() => readTokenizer(empty), { name: 'PetError', message: /no vocab\.txt and no tokenizer\.json/ })
  fs.rmSync(empty, { recursive: true, force: true })
  t.end()
})
