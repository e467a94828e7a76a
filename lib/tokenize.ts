// tokenize(): texts as the model's input ids, exactly as Hugging Face's BertTokenizer gives them — special tokens
// typed in the text ([MASK], [SEP], …) become those tokens. Pattern filling, by contrast, keeps user text plain
// (WordPieceTokenizer with splitSpecialTokens: false): a review containing "[MASK]" must not add a mask.
import { fieldMap, loadExamples, type DataInput } from './data/examples'
import { PetError } from './errors'
import { cachedModel } from './hub'
import { defaultModelDir } from './model'
import { readTokenizer } from './model-folder'
import { workflows } from './options'
import { HfTokenizer } from './tokenizer/hf-tokenizer'
import { workflowOptions } from './validate'

/** tokenize()'s options: the model whose tokenizer to use, and one text or many. */
export interface TokenizeOptions {
  /**
   * the model whose tokenizer to use: a folder, or a hub name org/name already in the HF cache (tokenize reads the
   * cache only: resolveModel downloads); default: the bundled zh-mini-mlm
   */
  model?: string
  /** the hub revision of a `model` given as org/name (default 'main') */
  revision?: string
  /** one text … */
  text?: string
  /** … or many (JSONL path or records: strings or objects with the text field) */
  input?: DataInput
  textField?: string
}

/** Each text's input ids and tokens, [CLS] … [SEP]. */
export interface TokenizeResult {
  count: number
  /** per text: [CLS] … [SEP] */
  texts: Array<{ inputIds: number[], tokens: string[] }>
}

/**
 * Texts as the model's input ids, exactly as Hugging Face's tokenizer gives them: special tokens typed in the text
 * ([MASK], [SEP], …) become those tokens (pattern filling, by contrast, keeps user text plain).
 */
export async function tokenize (options: TokenizeOptions): Promise<TokenizeResult> {
  const o = workflowOptions<TokenizeOptions & { textField: string }>(workflows.tokenize, options)
  if ((o.text === undefined) === (o.input === undefined)) throw new PetError('give exactly one of text or input', 'EINVAL')
  const dir = o.model === undefined ? defaultModelDir : cachedModel(o.model, { revision: o.revision }, 'tokenize()')
  // the folder's tokenizer as HF's, special tokens typed in the text split out; a tokenizer.json's post-processor
  // adds the model's own specials (<s> … </s>)
  const tok = readTokenizer(dir, { splitSpecialTokens: true })
  const hf = tok instanceof HfTokenizer ? tok : undefined
  const texts = o.text !== undefined ? [o.text] : loadExamples(o.input!, ['text'], fieldMap(['text'], o), 'input').map(e => e.fields.text)
  const out = texts.map(text => {
    const ids = hf !== undefined ? hf.encodeWithSpecials(text) : [tok.clsId, ...tok.encode(text), tok.sepId]
    return { inputIds: ids, tokens: ids.map(i => tok.idToToken(i) ?? '[UNK]') }
  })
  return { count: out.length, texts: out }
}
