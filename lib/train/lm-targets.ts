// A causal LM's training signal: every token predicted from the one before it (HF's labels = input_ids, shifted).

/** Appends (row, i) -> ids[i + 1] for i = 0 .. n - 2 of one unpadded row to a loss's vocabulary positions and targets. */
export function nextTokenTargets (row: number, ids: readonly number[], positions: number[], targets: number[]): void {
  for (let i = 0; i + 1 < ids.length; i++) {
    positions.push(row, i)
    targets.push(ids[i + 1])
  }
}
