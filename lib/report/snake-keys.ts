// The library speaks camelCase (devAccuracy), the CLI's --json and report.json snake_case (dev_accuracy), as
// they always have: one conversion between them. Objects whose keys are data (verbalizers, label maps,
// probabilities by label) keep their keys.
const dataKeys = new Set(['verbalizer', 'labelMap', 'probs', 'scores', 'perLabel'])

/**
 * A value with its object keys turned to snake_case, deeply, except under keys whose keys are data (verbalizer,
 * probs, …).
 */
export function snakeKeys (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys)
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) =>
    [k.replace(/[A-Z]/g, c => `_${c.toLowerCase()}`), dataKeys.has(k) ? v : snakeKeys(v)]))
}
