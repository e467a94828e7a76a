// The peer: transformers.js (@huggingface/transformers over onnxruntime-node, CPU, fp32) scoring the very same
// padded batches on the ONNX export of the same weights. It returns full-vocabulary logits at every position;
// the verbalizer tokens' logits are read at the [MASK] slots and turned into labels exactly as ours are.
import * as path from 'node:path'
import { padBatch } from '../batch'
import { PetError } from '../errors'
import { argmax, labelScores } from '../pet/label-scores'
import type { NativeBatch } from '../../bindings'
import type { Verbalizer } from '../pet/verbalizer'
import { encoderFlops, headFlops, prepareInputs, readShape, timeBatchSizes, type BenchInputs, type ModelShape } from './inputs'
import { maxRssMb, type BatchSizeResult, type ScoreJob, type ScoreRunResult } from './jobs'
import { summarise } from './batch-result'
import * as fs from 'node:fs'

// biome-ignore lint/suspicious/noExplicitAny: an optional dev dependency loaded at run time, with no types to import
type TransformersModule = any

export function loadTransformers (): TransformersModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('@huggingface/transformers')
  } catch (err) {
    throw new PetError('the transformers.js peer needs the dev dependency @huggingface/transformers ' +
      `(ONNXRUNTIME_NODE_INSTALL=skip npm install -D --ignore-scripts @huggingface/transformers), or pass --no-peer (${(err as Error).message})`, 'ENOPEER')
  }
}

/** The version in a package's package.json, found above its resolved entry point (its "exports" hide the file). */
function packageVersion (name: string): string {
  try {
    let dir = path.dirname(require.resolve(name))
    while (dir !== path.dirname(dir)) {
      const file = path.join(dir, 'package.json')
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string, version?: string }
        if (pkg.name === name && pkg.version) return pkg.version
      }
      dir = path.dirname(dir)
    }
  } catch {}
  return 'unknown'
}

export async function runPeerScore (job: ScoreJob): Promise<ScoreRunResult> {
  const dir = peerModelDir(job)
  const inputs = prepareInputs(job)
  const tf = loadTransformers()
  const { name, model, loadMs } = await loadPeerModel(tf, dir)
  const shape = readShape(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))
  const check = job.checkTokenizer ? await checkTokenizer(tf, name, inputs) : undefined
  const results = await timePeer(job, tf, model, inputs, shape)
  return {
    side: 'peer',
    n: inputs.encoded.length,
    loadMs,
    tokenizeMs: inputs.tokenizeMs,
    results,
    peakRssMb: maxRssMb(),
    tokenizerAgree: check?.agree,
    tokenizerChecked: check?.checked,
    versions: { '@huggingface/transformers': packageVersion('@huggingface/transformers'), 'onnxruntime-node': packageVersion('onnxruntime-node') }
  }
}

/** The peer's masked LM, as far as the bench calls it. */
interface PeerModel {
  (feeds: Record<string, unknown>): Promise<{ logits: { data: unknown, dispose?: () => void } }>
  dispose?: () => unknown
}

/** Milliseconds summed over the timed batches: building the feeds, the model call, reading the labels. */
type Split = { prepMs: number, callMs: number, postMs: number }

/** The peer's model folder, checked before anything is loaded: it must hold the ONNX export. */
function peerModelDir (job: ScoreJob): string {
  if (!job.peerModel) throw new PetError('no peer model directory given', 'EINVAL')
  const dir = path.resolve(job.peerModel)
  if (!fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) {
    throw new PetError(`${dir}: no onnx/model.onnx (a transformers.js model folder is needed; --peer-model DIR or --no-peer)`, 'ENOENT')
  }
  return dir
}

/** The model from its local folder (remote models off, so nothing is fetched from the hub), timed. */
async function loadPeerModel (tf: TransformersModule, dir: string): Promise<{ name: string, model: PeerModel, loadMs: number }> {
  tf.env.allowRemoteModels = false
  tf.env.localModelPath = path.dirname(dir) + path.sep
  const name = path.basename(dir)
  const t0 = performance.now()
  const model = await tf.AutoModelForMaskedLM.from_pretrained(name, { dtype: 'fp32', device: 'cpu' })
  return { name, model, loadMs: performance.now() - t0 }
}

/** How many examples transformers.js's own tokenizer turns into our very ids, of those that can be compared. */
async function checkTokenizer (tf: TransformersModule, name: string, inputs: BenchInputs): Promise<{ agree: number, checked: number }> {
  // transformers.js tokenizes the filled-in pattern text; its truncation drops the closing [SEP], so it
  // tokenizes in full and our rule is applied to its ids (prefix patterns: keep the head, end with [SEP]).
  const { encoded, pattern } = inputs
  const tokenizer = await tf.AutoTokenizer.from_pretrained(name)
  let agree = 0
  let checked = 0
  inputs.texts.forEach((fields, i) => {
    const ours = encoded[i].inputIds
    if (encoded[i].truncated > 0 && !pattern.isPrefix) return
    const text = pattern.pieces.map(p => p.kind === 'text' ? p.value : p.kind === 'mask' ? '[MASK]'
      : p.kind === 'special' ? p.token : fields[pattern.fields.indexOf(p.name)]).join('')
    let ids = Array.from(tokenizer(text).input_ids.data as BigInt64Array, Number)
    if (encoded[i].truncated > 0) ids = [...ids.slice(0, ours.length - 1), ids[ids.length - 1]]
    checked++
    if (ids.length === ours.length && ids.every((id, k) => id === ours[k])) agree++
  })
  return { agree, checked }
}

/** Every batch size timed; the model is disposed of however the timing ends. */
async function timePeer (job: ScoreJob, tf: TransformersModule, model: PeerModel, inputs: BenchInputs, shape: ModelShape): Promise<BatchSizeResult[]> {
  const lengths = inputs.encoded.map(e => e.inputIds.length)
  const labels = new Array<number>(inputs.encoded.length)
  const split: Split = { prepMs: 0, callMs: 0, postMs: 0 }
  const runBatch = peerBatchRunner(tf, model, inputs, shape.vocabSize, labels, split)
  try {
    const timed = await timeBatchSizes(lengths, job.batchSizes, job.order, job.warmupBatches, runBatch,
      () => Object.assign(split, { prepMs: 0, callMs: 0, postMs: 0 }))
    // it computes the encoder and the MLM head (transform + full-vocabulary decoder) at every position
    return timed.map(t => summarise(t.batchSize, t.buckets, lengths, t.latencies, t.seconds, labels, inputs.gold, shape, split,
      (B, T) => encoderFlops(shape, B, T) + headFlops(shape, B * T)))
  } finally {
    await model.dispose?.()
  }
}

/** Scores one bucket of example indices into `labels`, adding each part's time to `split`. */
function peerBatchRunner (tf: TransformersModule, model: PeerModel, inputs: BenchInputs, V: number, labels: number[], split: Split): (bucket: number[]) => Promise<void> {
  const { encoded, verbalizer, pattern } = inputs
  const S = pattern.maskCount
  return async bucket => {
    const t0 = performance.now()
    const items = bucket.map(i => encoded[i])
    const batch = padBatch(items, inputs.tokenizer.padId)
    const feeds = peerFeeds(tf, batch)
    const t1 = performance.now()
    const out = await model(feeds)
    const t2 = performance.now()
    const data = out.logits.data as Float32Array
    bucket.forEach((index, b) => { labels[index] = peerLabel(data, b * batch.seqLen, items[b].maskPositions, V, S, verbalizer) })
    out.logits.dispose?.()
    split.prepMs += t1 - t0
    split.callMs += t2 - t1
    split.postMs += performance.now() - t2
  }
}

/** The padded batch as the ONNX graph's int64 inputs. */
function peerFeeds (tf: TransformersModule, batch: NativeBatch): Record<string, unknown> {
  const dims = [batch.batchSize, batch.seqLen]
  const int64 = (a: Int32Array) => new tf.Tensor('int64', BigInt64Array.from(a, x => BigInt(x)), dims)
  return {
    input_ids: int64(batch.inputIds),
    attention_mask: int64(batch.attentionMask!),
    token_type_ids: int64(batch.tokenTypeIds!)
  }
}

/**
 * One example's label from the full-vocabulary logits of its batch row (`firstRow`: the row's first position):
 * the verbalizer's candidates read at its [MASK] slots and scored exactly as ours are.
 */
function peerLabel (data: Float32Array, firstRow: number, maskPositions: readonly number[], V: number, S: number, verbalizer: Verbalizer): number {
  const C = verbalizer.candidates.length
  const logits = new Float32Array(S * C)
  const logZ = new Float32Array(S)
  maskPositions.forEach((col, s) => {
    const row = data.subarray((firstRow + col) * V, (firstRow + col + 1) * V)
    verbalizer.candidates.forEach((id, c) => { logits[s * C + c] = row[id] })
    // single-slot verbalizers are decided on raw logits (as ours are); the normaliser is needed only for several slots
    if (S > 1) logZ[s] = logSumExp(row, V)
  })
  return argmax(labelScores(verbalizer, logits, logZ))
}

/** log(sum(exp)) over the first V logits, shifted by their max so that exp cannot overflow. */
function logSumExp (row: Float32Array, V: number): number {
  let max = -Infinity
  for (let k = 0; k < V; k++) if (row[k] > max) max = row[k]
  let sum = 0
  for (let k = 0; k < V; k++) sum += Math.exp(row[k] - max)
  return max + Math.log(sum)
}
