// Patterns, verbalizers and data files: structure, truncation, and bad input reported clearly.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { loadExamples, toExamples } from '../../lib/data/examples'
import { parseJsonl, readJsonl } from '../../lib/data/jsonl'
import { PetError } from '../../lib/errors'
import { ModelFolder } from '../../lib/model-folder'
import { encodeClozes } from '../../lib/pet/cloze'
import { encodePlain } from '../../lib/pet/cls-head'
import { labelScores } from '../../lib/pet/label-scores'
import { Pattern } from '../../lib/pet/pattern'
import { accuracy, checkPatternVerbalizer } from '../../lib/pet/score'
import { Verbalizer } from '../../lib/pet/verbalizer'
import { WordPieceTokenizer } from '../../lib/tokenizer/wordpiece'
import { fixtures, miniMlm, tmpDir } from '../helpers/paths'

const tok = WordPieceTokenizer.fromFile(path.join(miniMlm, 'vocab.txt'), { splitSpecialTokens: false })

t.test('patterns place special tokens structurally', async t => {
  const p = new Pattern('[unused1][unused2][MASK]满意。{text}')
  const e = p.encode({ text: '[MASK]好' }, tok, 128)
  t.same(e.inputIds.slice(0, 4), [tok.clsId, 1, 2, tok.maskId])
  t.same(e.maskPositions, [3], 'a [MASK] inside user text is plain text, not a slot')
  t.ok(e.inputIds.filter(id => id === tok.maskId).length === 1)
  t.ok(p.isPrefix)
  t.notOk(new Pattern('{text}[MASK]满意。').isPrefix)
  const pair = new Pattern('{text_a}？[SEP][MASK]，{text_b}')
  const pe = pair.encode({ text_a: '我去了北京', text_b: '我去了上海' }, tok, 64)
  const sep = pe.inputIds.indexOf(tok.sepId)
  t.ok(pe.tokenTypeIds.slice(0, sep + 1).every(x => x === 0) && pe.tokenTypeIds.slice(sep + 1).every(x => x === 1), 'segment 1 after [SEP]')
  t.same(new Pattern('[MASK][MASK]新闻：{text}').encode({ text: '球赛' }, tok, 32).maskPositions, [1, 2])
})

t.test('a model with one token type (RoBERTa, XLM-R: type_vocab_size 1) gets type 0 after a [SEP] and in pairs', async t => {
  const pair = new Pattern('{text_a} [SEP] It was [MASK]. {text_b}')
  const fields = { text_a: 'good movie', text_b: 'bad film' }
  for (const [family, types] of [['roberta', 1], ['xlmr', 1], ['albert', 2], ['ernie', 4]] as const) {
    const folder = ModelFolder.read(path.join(fixtures, 'families', `tiny-${family}`))
    t.equal(folder.config.typeVocabSize, types, `${family}: type_vocab_size`)
    const example = { fields, label: 'pos', source: 'x' }
    const verbalizer = new Verbalizer({ pos: ['good'], neg: ['bad'] }, folder.tokenizer, pair)
    const cloze = encodeClozes(folder, pair, verbalizer, [example], 64)[0][0]
    const plain = encodePlain(folder, example, ['text_a', 'text_b'], 64)
    const max = (ids: number[]) => Math.max(...ids)
    // the one rule: segment 1 is type 1 where the model has two or more types, else type 0
    t.equal(max(cloze.tokenTypeIds), types === 1 ? 0 : 1, `${family}: the pattern's types after [SEP]`)
    t.equal(max(plain.tokenTypeIds), types === 1 ? 0 : 1, `${family}: the [CLS] head's pair types`)
  }
  t.ok(pair.encode(fields, tok, 64).tokenTypeIds.includes(1), 'Pattern.encode itself gives segment 1 after [SEP]')
})

t.test('truncation keeps the pattern whole and cuts the text', async t => {
  const long = '很好'.repeat(200)
  const suffix = new Pattern('{text}[MASK]满意。')
  const e = suffix.encode({ text: long }, tok, 128)
  t.equal(e.inputIds.length, 128)
  t.same(e.inputIds.slice(-5), [tok.maskId, tok.tokenToId('满'), tok.tokenToId('意'), tok.tokenToId('。'), tok.sepId])
  t.equal(e.truncated, 400 - (128 - 6))
  const pair = new Pattern('{text_a}？[MASK]，{text_b}')
  const pe = pair.encode({ text_a: '甲'.repeat(100), text_b: '乙'.repeat(30) }, tok, 64)
  t.equal(pe.inputIds.length, 64)
  t.equal(pe.inputIds.filter(id => id === tok.tokenToId('乙')).length, 30, 'the longest field is cut first')
  t.throws(() => new Pattern('这是一段很长的模式'.repeat(4) + '[MASK]{text}').encode({ text: 'x' }, tok, 16), /needs \d+ tokens, more than the maximum length 16/)
})

t.test('bad patterns', async t => {
  t.throws(() => new Pattern('满意。{text}'), /has no \[MASK\]/)
  t.throws(() => new Pattern('[MASK]满意。'), /has no input field/)
  t.throws(() => new Pattern(''), /empty/)
  t.throws(() => new Pattern('[MASK]{text}').encode({ other: 'x' }, tok, 32), /no text for the pattern field \{text\}/)
})

t.test('verbalizers: one-to-one, many-to-one, multi-token, and unknown tokens', async t => {
  const v = new Verbalizer({ positive: ['很', '挺', '太'], negative: '不' }, tok)
  t.same(v.lengths, [1])
  t.equal(v.candidates.length, 4)
  // logits at one slot for candidates [很, 挺, 太, 不]
  const logits = Float32Array.from([1, 2, 3, 0.5])
  const logZ = Float32Array.from([5])
  t.same(labelScores(v, logits, logZ), [2, 0.5], 'PET: the mean of the words\' logits')
  const lse = labelScores(v, logits, logZ, { manyToOne: 'logsumexp', multiToken: 'sum', score: 'logprob' })
  t.ok(Math.abs(lse[0] - Math.log(Math.exp(1 - 5) + Math.exp(2 - 5) + Math.exp(3 - 5))) < 1e-6, 'log of summed probabilities')

  const topics = new Verbalizer({ sports: ['体育'], finance: ['财经'] }, tok)
  t.same(topics.lengths, [2])
  // candidates [体, 育, 财, 经]; two slots
  const l2 = Float32Array.from([3, 0, 1, 0, /* slot 2 */ 0, 2, 0, 1])
  const z2 = Float32Array.from([4, 3])
  t.same(labelScores(topics, l2, z2), [(3 - 4) + (2 - 3), (1 - 4) + (1 - 3)], 'sum of per-slot log-probabilities')
  t.same(labelScores(topics, l2, z2, { manyToOne: 'mean', multiToken: 'mean', score: 'logprob' }), [-1, -2.5])
  t.doesNotThrow(() => checkPatternVerbalizer(new Pattern('[MASK]{text}'), topics), 'one [MASK] spans a word of any length')
  t.throws(() => checkPatternVerbalizer(new Pattern('[MASK][MASK][MASK]{text}'), topics), /has 3 \[MASK\] but the verbalizer words have 2 token/)

  t.throws(() => new Verbalizer({ positive: ['😀'], negative: ['不'] }, tok), /unknown verbalizer token '😀' for label 'positive'/)
  t.same(new Verbalizer({ positive: ['很好'], negative: ['不'] }, tok).lengths, [1, 2], 'words of different lengths are fine')
  t.throws(() => new Verbalizer({ positive: ['很'] }, tok), /at least two labels/)
  t.throws(() => new Verbalizer({ positive: ['很'], negative: ['很'] }, tok), /used for both/)
  t.throws(() => Verbalizer.parse('{"positive": ["很"]', tok), /not valid JSON/)
  t.same(new Verbalizer({ a: '[unused3]', b: '[unused4]' }, tok).candidates, [3, 4], 'vocabulary entries are taken as they are')
})

t.test('JSONL: empty and malformed lines are reported with their line number', async t => {
  t.same(parseJsonl('{"text":"a"}\n"b"\n', 'f.jsonl').map(r => r.value), [{ text: 'a' }, 'b'])
  t.throws(() => parseJsonl('{"text":"a"}\n\n{"text":"b"}\n', 'f.jsonl'), /f\.jsonl:2: empty line/)
  t.throws(() => parseJsonl('{"text":"a"}\n{"text": oops}\n', 'f.jsonl'), /f\.jsonl:2: invalid JSON/)
  t.throws(() => readJsonl('/nonexistent.jsonl'), /cannot read \/nonexistent\.jsonl: ENOENT/)
  const dir = tmpDir()
  const file = (name: string, text: string) => { fs.writeFileSync(path.join(dir, name), text); return path.join(dir, name) }
  t.throws(() => loadExamples(file('g.jsonl', '{"text":"a"}\n{"txt":"a"}\n'), ['text'], {}, 'train'), /g\.jsonl:2: no text field 'text'/)
  t.throws(() => loadExamples(file('h.jsonl', '[1,2]\n'), ['text'], {}, 'train'), /h\.jsonl:1: expected a JSON string or object/)
  const ex = loadExamples(file('e.jsonl', '{"sentence":"好","label":"Positive"}\n'), ['text'], { labelField: 'label', labelMap: { Positive: 'positive' } }, 'train')
  t.same(ex[0].fields, { text: '好' }, "'text' falls back to FewCLUE's 'sentence'")
  t.equal(ex[0].label, 'positive')
})

t.test('toExamples takes the plain records a caller has in memory', async t => {
  const ex = toExamples(['好', { text: '不好', label: 'negative' }, { text: '无标签' }])
  t.same(ex.slice(0, 2).map(e => [e.fields, e.label, e.source]), [[{ text: '好' }, undefined, 'records[0]'], [{ text: '不好' }, 'negative', 'records[1]']])
  t.equal(ex[2].label, undefined, 'a record without the label field is unlabeled')
  const mapped = toExamples([{ review: '还行', stars: 3 }], { textField: 'review', labelField: 'stars', labelMap: { 3: 'neutral' } })
  t.same([mapped[0].fields, mapped[0].label], [{ text: '还行' }, 'neutral'], 'textField, a numeric label and the label map')
  const pair = toExamples([{ a: 'x', b: 'y' }], { fields: ['a', 'b'] })
  t.same(pair[0].fields, { a: 'x', b: 'y' })
  t.throws(() => toExamples([{ review: '还行' }], { source: 'mine' }), /mine\[0\]: no text field 'text'/)
  t.throws(() => toExamples(['x'], { fields: ['a', 'b'] }), /records\[0\]: a bare string cannot fill the fields a, b/)
  t.throws(() => toExamples([42 as unknown as string]), /records\[0\]: expected a JSON string or object/)
  const v = new Verbalizer({ positive: ['很'], negative: ['不'] }, tok)
  const err = t.throws(() => accuracy([{ fields: { text: 'x' }, label: 'neutral', source: 'd.jsonl:7' }], [{ label: 'positive', scores: [0, 0], probs: [0.5, 0.5] }], v)) as unknown
  t.ok(err instanceof PetError && /d\.jsonl:7: unknown label 'neutral' \(known labels: 'positive', 'negative'\)/.test(err.message))
})
