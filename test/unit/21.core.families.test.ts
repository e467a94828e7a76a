// RoBERTa, XLM-R, ALBERT and ERNIE through the one loader and encoder layer: embeddings, last hidden states and
// logits at every position (padding included) and the MLM loss equal HF's (fixtures/hf-reference/families); a
// training step of the whole model and one of the prompt rows alone each lower that loss.
import t from 'tap'
import * as path from 'node:path'
import { MaskedLM } from '../../lib/model'
import { fixtures } from '../helpers/paths'
import { checkForward, referenceBatch } from '../helpers/parity'
import { readSafetensors, type SafetensorsTensor } from '../../lib/safetensors'
import { toInt32 } from '../helpers/tensors'

const families = path.join(fixtures, 'families')

for (const name of ['tiny-roberta', 'tiny-xlmr', 'tiny-albert', 'tiny-ernie']) {
  t.test(`${name}: embeddings, last hidden states and logits at every position match HF within 1e-5`, async t => {
    const ref = readSafetensors(path.join(families, `${name}_reference.safetensors`))
    const model = await MaskedLM.load(path.join(families, name))
    t.teardown(() => model.dispose())
    const batch = referenceBatch(ref)
    t.ok(batch.attentionMask!.includes(0), 'the batch has padding')
    await checkForward(t, model, batch, ref, 1e-5)
  })
}

/** The fixture's MLM case: the masked batch and the (row, column) / target of every scored position. */
function mlmCase (ref: Map<string, SafetensorsTensor>) {
  const batch = referenceBatch(ref, 'masked_input_ids')
  const labels = toInt32(ref.get('mlm_labels')!)
  const positions: number[] = []
  const targets: number[] = []
  labels.forEach((l, i) => { if (l !== -100) { positions.push(Math.floor(i / batch.seqLen), i % batch.seqLen); targets.push(l) } })
  return { batch, loss: { vocabPositions: Int32Array.from(positions), vocabTargets: Int32Array.from(targets) }, refLoss: (ref.get('mlm_loss')!.data as Float32Array)[0] }
}

for (const name of ['tiny-roberta', 'tiny-xlmr', 'tiny-albert', 'tiny-ernie']) {
  t.test(`${name}: the MLM loss matches HF within 1e-5; a full step and a prompt-rows step lower it`, async t => {
    const ref = readSafetensors(path.join(families, `${name}_reference.safetensors`))
    const { batch, loss, refLoss } = mlmCase(ref)
    t.ok(loss.vocabTargets.length >= 2, `${loss.vocabTargets.length} scored positions`)

    const model = await MaskedLM.load(path.join(families, name))
    t.teardown(() => model.dispose())
    model.setTrainable({ kind: 'all' }, { lr: 1e-3 })
    const before = await model.lossAndGrads(batch, loss, false)
    t.ok(Math.abs(before.loss - refLoss) <= 1e-5 * Math.max(1, Math.abs(refLoss)), `MLM loss ${before.loss} vs HF ${refLoss}`)
    for (let i = 0; i < 3; i++) await model.trainStep(batch, loss)
    const after = await model.lossAndGrads(batch, loss, false)
    t.ok(after.loss < before.loss - 1e-3, `three full steps: ${before.loss.toFixed(4)} -> ${after.loss.toFixed(4)}`)

    // P-tuning's shape: the model frozen, only some rows of the word embeddings learn; put prompt rows in the input
    const prompt = await MaskedLM.load(path.join(families, name))
    t.teardown(() => prompt.dispose())
    const rows = Int32Array.from([prompt.tokenizer.promptTokenId(1), prompt.tokenizer.promptTokenId(2)])
    const ids = batch.inputIds.slice()
    for (let b = 0; b < batch.batchSize; b++) { ids[b * batch.seqLen + 1] = rows[0]; ids[b * batch.seqLen + 2] = rows[1] }
    const scored = { ...loss }
    const keep: number[] = []
    const keepTargets: number[] = []
    for (let i = 0; i < loss.vocabTargets.length; i++) {
      const col = loss.vocabPositions[2 * i + 1]
      if (col !== 1 && col !== 2) { keep.push(loss.vocabPositions[2 * i], col); keepTargets.push(loss.vocabTargets[i]) }
    }
    scored.vocabPositions = Int32Array.from(keep)
    scored.vocabTargets = Int32Array.from(keepTargets)
    const promptBatch = { ...batch, inputIds: ids }
    const n = prompt.setTrainable({ kind: 'rows', rows }, { lr: 1e-2 })
    t.ok(n > 0, `${n} trainable values`)
    const p0 = await prompt.lossAndGrads(promptBatch, scored, false)
    t.same(Object.keys(p0.grads), ['rows'], 'only the rows are trainable')
    for (let i = 0; i < 5; i++) await prompt.trainStep(promptBatch, scored)
    const p1 = await prompt.lossAndGrads(promptBatch, scored, false)
    t.ok(p1.loss < p0.loss, `five prompt-row steps: ${p0.loss.toFixed(4)} -> ${p1.loss.toFixed(4)}`)
  })
}
