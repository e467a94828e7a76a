// A learned prompt as a tiny adapter folder, the way HF PEFT saves P-tuning adapters: adapter_config.json and
// adapter_model.safetensors holding `prompt_embeddings` (+ the prompt encoder, when there is one). It plugs onto
// an unchanged base model; a different base model is refused.
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { NativeFamily } from '../../bindings'
import { PetError } from '../errors'
import type { MaskedLM } from '../model'
import type { LabelScoreOptions } from '../pet/label-scores'
import { readSafetensorsF32, writeSafetensorsF32, type F32Tensor } from '../safetensors'

/**
 * adapter_config.json: PEFT's P-tuning fields, what identifies the base model, the prompt's rows, and the task
 * (pattern, verbalizer, labels, scoring) that Classifier.load needs to predict with the adapter.
 */
export interface AdapterConfig {
  peft_type: 'P_TUNING'
  task_type: 'PET_CLOZE'
  num_virtual_tokens: number
  token_dim: number
  encoder_reparameterization_type: 'NONE' | 'LSTM' | 'MLP'
  encoder_hidden_size: number
  base_model_name_or_path: string
  /** sha256 of the base config's shape fields and of tensors P-tuning never changes */
  base_model_fingerprint: string
  /** the base model's family ('bert' where absent: adapters from before GPT-2 loaded) */
  base_model_family?: NativeFamily
  /** the word-embedding rows the prompt replaces, in the order of prompt_embeddings */
  prompt_rows: number[]
  /** true: the rows are the word-embedding rows themselves (input and tied output); false: input side only */
  tied: boolean
  pattern: string
  verbalizer: Record<string, string[]>
  labels: string[]
  label_scores: LabelScoreOptions
  max_length: number
  fields: string[]
}

/** Per family, tensors P-tuning never changes that tell one base model from another (a BERT's are unchanged from
 * the first adapters, so those still load); the other families (RoBERTa, XLM-R, ALBERT, ERNIE) use the position
 * embeddings their config names. */
const fingerprintTensors: Record<string, readonly string[]> = {
  bert: ['bert.embeddings.position_embeddings.weight', 'bert.encoder.layer.0.attention.self.query.weight', 'cls.predictions.bias'],
  gpt2: ['transformer.wpe.weight', 'transformer.h.0.attn.c_attn.weight', 'transformer.ln_f.weight']
}

/** Identifies a base model by what P-tuning leaves untouched (not the word embeddings, whose rows it trains). */
export function baseFingerprint (model: MaskedLM): string {
  const c = model.info.config
  const h = createHash('sha256')
  h.update(JSON.stringify([c.vocabSize, c.hiddenSize, c.numHiddenLayers, c.numAttentionHeads, c.intermediateSize, c.maxPositionEmbeddings]))
  if (c.family !== 'bert') h.update(c.family)
  for (const name of fingerprintTensors[c.family] ?? [c.positionEmbeddings]) {
    const t = model.getTensor(name)
    h.update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))
  }
  return h.digest('hex')
}

/**
 * Writes an adapter folder: the prompt's embedding rows (the word-embedding rows themselves when tied, else the
 * prompt encoder's output) and any prompt encoder's tensors in adapter_model.safetensors, beside adapter_config.json.
 */
export async function saveAdapter (dir: string, model: MaskedLM, cfg: Omit<AdapterConfig, 'peft_type' | 'task_type' | 'num_virtual_tokens' | 'token_dim' | 'encoder_hidden_size'>): Promise<void> {
  const H = model.info.config.hiddenSize
  // prompt rows are word-embedding rows: embeddingSize wide (ALBERT's factorised embeddings are narrower than H)
  const E = model.info.config.embeddingSize
  let values: Float32Array
  if (cfg.tied) {
    const w = model.getTensor(model.info.config.wordEmbeddings).data
    values = new Float32Array(cfg.prompt_rows.length * E)
    cfg.prompt_rows.forEach((r, i) => values.set(w.subarray(r * E, (r + 1) * E), i * E))
  } else {
    const ir = model.inputRows()
    if (!ir) throw new PetError('the model has no prompt encoder output to save', 'EINVAL')
    values = ir.values
  }
  const tensors: Record<string, F32Tensor> = { prompt_embeddings: { shape: [cfg.prompt_rows.length, E], data: values } }
  for (const [name, t] of Object.entries(model.promptEncoderTensors())) tensors[name] = t
  fs.mkdirSync(dir, { recursive: true })
  writeSafetensorsF32(path.join(dir, 'adapter_model.safetensors'), tensors)
  const config: AdapterConfig = {
    peft_type: 'P_TUNING',
    task_type: 'PET_CLOZE',
    num_virtual_tokens: cfg.prompt_rows.length,
    token_dim: E,
    encoder_hidden_size: H,
    ...cfg
  }
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n')
}

/**
 * An adapter folder's adapter_config.json; an ENOENT PetError where there is none, EDATA where it is not P-tuning's.
 */
export function readAdapterConfig (dir: string): AdapterConfig {
  const file = path.join(dir, 'adapter_config.json')
  if (!fs.existsSync(file)) throw new PetError(`${file} not found: --prompt takes an adapter folder written by pet ptune`, 'ENOENT')
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as AdapterConfig
  if (c.peft_type !== 'P_TUNING' || !Array.isArray(c.prompt_rows)) throw new PetError(`${file}: not a P-tuning adapter`, 'EDATA')
  return c
}

/** Puts the adapter's prompt onto `model`; refuses a model other than the adapter's base. */
export function loadAdapter (model: MaskedLM, dir: string): AdapterConfig {
  const c = readAdapterConfig(dir)
  const fp = baseFingerprint(model)
  const family = c.base_model_family ?? 'bert'
  if (family !== model.family) {
    throw new PetError(`the adapter ${dir} was trained on a ${family} model (${c.base_model_name_or_path}); ${model.dir} is a ${model.family} model`, 'EADAPTER')
  }
  if (fp !== c.base_model_fingerprint) {
    throw new PetError(`the adapter ${dir} was trained on another base model (${c.base_model_name_or_path}); ` +
      `${model.dir} does not match it (fingerprint ${fp.slice(0, 12)}… vs ${c.base_model_fingerprint.slice(0, 12)}…)`, 'EADAPTER')
  }
  const t = readSafetensorsF32(path.join(dir, 'adapter_model.safetensors')).prompt_embeddings
  if (!t || t.shape[0] !== c.prompt_rows.length || t.shape[1] !== model.info.config.embeddingSize) {
    throw new PetError(`${dir}: prompt_embeddings must be [${c.prompt_rows.length}, ${model.info.config.embeddingSize}]`, 'EDATA')
  }
  if (c.tied) model.setEmbeddingRows(Int32Array.from(c.prompt_rows), t.data)
  else model.setInputRows(Int32Array.from(c.prompt_rows), t.data)
  return c
}
