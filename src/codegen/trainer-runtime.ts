/**
 * Support code of generated training modules (they import nothing): the
 * dropout-mask and shuffle random numbers, finiteness checks, and the parts
 * of the Trainer class that are the same for every model (fit's epoch and
 * batch loops, evaluate's and predict's chunking). Model-specific code
 * (kernels, forward methods, weight tables) is assembled in `training.ts`.
 */

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): one uint32 of state, a
 * uniform double in [0, 1) per call. Dropout masks and fit's shuffling each
 * draw from their own stream, so a seed fixes every mask and every order.
 */
export const randomSource = `/** A uniform stream in [0, 1) from a 32-bit seed (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of stream \`k\` under the trainer's seed: distinct streams for distinct k. */
function streamSeed(seed: number, k: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(k + 1, 0x85ebca6b)) >>> 0;
}`;

export const dropoutMaskSource = `/**
 * Fills the first \`count\` floats of a dropout mask: 0 with probability \`rate\`, else 1 / (1 - rate).
 * The mulberry32 stream of \`state[k]\` inlined, and branchless (a random keep/drop branch
 * mispredicts half the time): u < rate gives floor(u - rate) = -1, u >= rate gives 0.
 */
function dropoutMask(m: Float32Array, count: number, rate: number, state: Uint32Array, k: number): void {
  const keep = 1 / (1 - rate);
  let a = state[k]!;
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    m[i] = (Math.floor(((t ^ (t >>> 14)) >>> 0) / 4294967296 - rate) + 1) * keep;
  }
  state[k] = a;
}`;

export const nextTurnSource = `/** Resolves on a later turn of the event loop (setTimeout exists in Node and browsers; lib es2022 does not declare it). */
function nextTurn(): Promise<void> {
  const timers = globalThis as unknown as { setTimeout(callback: () => void, ms: number): unknown };
  return new Promise((resolve) => {
    timers.setTimeout(resolve, 0);
  });
}`;

export const finiteSource = `/** Whether the first \`size\` values are all finite. */
function allFinite(x: Float32Array, size: number): boolean {
  for (let i = 0; i < size; i++) if (!Number.isFinite(x[i]!)) return false;
  return true;
}

/** The number of examples in \`x\` (\`size\` floats each). */
function examples(x: Float32Array, size: number, what: string): number {
  if (!(x instanceof Float32Array)) throw new TypeError(what + " must be a Float32Array");
  if (x.length % size !== 0 || x.length === 0) {
    throw new RangeError(what + " needs a positive multiple of " + size + " floats (" + size + " per example), got " + x.length);
  }
  return x.length / size;
}

/** Own properties only: a weight named "__proto__" or "toString" is not inherited. */
function own(record: Record<string, Float32Array>, name: string): Float32Array | undefined {
  return Object.prototype.hasOwnProperty.call(record, name) ? record[name] : undefined;
}

/** Weights by name, in PARAMS order, checked: every weight present, of the right size, and no others. */
function fromRecord(record: Record<string, Float32Array>): Float32Array[] {
  for (const name of Object.keys(record)) {
    if (!PARAMS.some(([p]) => p === name)) throw new Error("weights: unknown weight " + JSON.stringify(name) + "; the weights are " + PARAMS.map(([p]) => JSON.stringify(p)).join(", "));
  }
  return PARAMS.map(([name, shape]) => {
    const value = own(record, name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(value instanceof Float32Array)) throw new Error("weights: missing " + JSON.stringify(name) + " (a Float32Array of shape [" + shape.join(", ") + "])");
    if (value.length !== size) throw new Error("weights: " + JSON.stringify(name) + " needs " + size + " floats (shape [" + shape.join(", ") + "]), got " + value.length);
    return value;
  });
}`;

/** fit, evaluate and predict: the same for every model; they call the model's trainOnBatch and forward methods. */
export function trainerLoops(o: { inSize: number; labelSize: number; outSize: number; accuracy: boolean }): { fitSteps: string[]; fit: string[]; fitAsync: string[]; evaluate: string[]; predict: string[] } {
  const acc = o.accuracy;
  // fit and fitAsync share one generator that yields after every batch and fills \`history\` as epochs end.
  const fitSteps = [
    'checkBatchSize(options.batchSize);',
    'if (!Number.isInteger(options.epochs) || options.epochs < 0) throw new RangeError("epochs must be a non-negative integer, got " + String(options.epochs));',
    `const count = examples(x, ${o.inSize}, "x");`,
    `checkInput(y, count, ${o.labelSize}, "y (labels)");`,
    'history["loss"] = [];',
    ...(acc ? ['history["accuracy"] = [];'] : []),
    'if (options.validationData !== undefined) {',
    '  history["val_loss"] = [];',
    ...(acc ? ['  history["val_accuracy"] = [];'] : []),
    '}',
    'const batchSize = Math.min(options.batchSize, count);',
    `const xb = new Float32Array(batchSize * ${o.inSize});`,
    `const yb = new Float32Array(batchSize * ${o.labelSize});`,
    'const order = Array.from({ length: count }, (_, i) => i);',
    'for (let epoch = 0; epoch < options.epochs; epoch++) {',
    '  if (options.shuffle ?? true) {',
    '    for (let i = count - 1; i > 0; i--) {',
    '      const j = Math.floor(this.shuffleRandom() * (i + 1));',
    '      const t = order[i]!;',
    '      order[i] = order[j]!;',
    '      order[j] = t;',
    '    }',
    '  }',
    `  let lossSum = 0;${acc ? ' let accuracySum = 0;' : ''}`,
    '  for (let start = 0, batch = 0; start < count; start += batchSize, batch++) {',
    '    const n = Math.min(batchSize, count - start);',
    '    for (let k = 0; k < n; k++) {',
    '      const e = order[start + k]!;',
    `      xb.set(x.subarray(e * ${o.inSize}, (e + 1) * ${o.inSize}), k * ${o.inSize});`,
    `      yb.set(y.subarray(e * ${o.labelSize}, (e + 1) * ${o.labelSize}), k * ${o.labelSize});`,
    '    }',
    `    const loss = this.trainOnBatch(xb.subarray(0, n * ${o.inSize}), yb.subarray(0, n * ${o.labelSize}), n);`,
    '    lossSum += loss * n;',
    ...(acc ? ['    accuracySum += this.lastAccuracy * n;'] : []),
    `    options.onBatchEnd?.(batch, { loss${acc ? ', accuracy: this.lastAccuracy' : ''} });`,
    '    yield;',
    '  }',
    `  const logs: Logs = { loss: lossSum / count${acc ? ', accuracy: accuracySum / count' : ''} };`,
    '  history["loss"]!.push(logs.loss);',
    ...(acc ? ['  history["accuracy"]!.push(logs.accuracy!);'] : []),
    '  if (options.validationData !== undefined) {',
    '    const [vx, vy] = options.validationData;',
    '    const v = this.evaluate(vx, vy, batchSize);',
    '    logs.val_loss = v.loss;',
    '    history["val_loss"]!.push(v.loss);',
    ...(acc ? ['    logs.val_accuracy = v.accuracy!;', '    history["val_accuracy"]!.push(v.accuracy!);'] : []),
    '  }',
    '  options.onEpochEnd?.(epoch, logs);',
    '}',
  ];
  const fit = [
    'const history: Record<string, number[]> = {};',
    'const steps = this.fitSteps(x, y, options, history);',
    'while (!steps.next().done);',
    'return { history };',
  ];
  const fitAsync = [
    'const history: Record<string, number[]> = {};',
    'const steps = this.fitSteps(x, y, options, history);',
    'let yielded = Date.now();',
    'while (!steps.next().done) {',
    '  // Give timers, I/O and signal handlers a turn every 20 ms, then honour a stop request.',
    '  if (Date.now() - yielded >= 20) {',
    '    await nextTurn();',
    '    yielded = Date.now();',
    '  }',
    '  if (options.signal?.aborted) return { history, stopped: true };',
    '}',
    'return { history, stopped: false };',
  ];
  const evaluate = [
    'checkBatchSize(batchSize);',
    `const count = examples(x, ${o.inSize}, "x");`,
    `checkInput(y, count, ${o.labelSize}, "y (labels)");`,
    `let loss = 0;${acc ? ' let accuracy = 0;' : ''}`,
    'for (let start = 0; start < count; start += batchSize) {',
    '  const n = Math.min(batchSize, count - start);',
    `  const [l${acc ? ', a' : ''}] = this.evaluateBatch(n, x.subarray(start * ${o.inSize}, (start + n) * ${o.inSize}), y.subarray(start * ${o.labelSize}, (start + n) * ${o.labelSize}));`,
    '  loss += l * n;',
    ...(acc ? ['  accuracy += a * n;'] : []),
    '}',
    `return { loss: loss / count${acc ? ', accuracy: accuracy / count' : ''} };`,
  ];
  const predict = [
    'checkBatchSize(batchSize);',
    `const count = examples(x, ${o.inSize}, "x");`,
    `const out = new Float32Array(count * ${o.outSize});`,
    'for (let start = 0; start < count; start += batchSize) {',
    '  const n = Math.min(batchSize, count - start);',
    `  out.set(this.predictBatch(n, x.subarray(start * ${o.inSize}, (start + n) * ${o.inSize})), start * ${o.outSize});`,
    '}',
    'return out;',
  ];
  return { fitSteps, fit, fitAsync, evaluate, predict };
}
