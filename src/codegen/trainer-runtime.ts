/**
 * Support code of generated training modules (they import nothing): the
 * dropout-mask and shuffle random numbers, finiteness checks, fit's trace of
 * the nonlinearities' inputs (percentiles by selection), recalibrate's
 * running moments, and the parts of the Trainer class that are the same for
 * every model (fit's epoch and batch loops, evaluate's and predict's
 * chunking, one batchnorm layer's recalibration). Model-specific code
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

/**
 * fit's `trace` (Ioffe & Szegedy 2015, Figure 1): the 15th, 50th and 85th
 * percentiles of each traced layer's nonlinearity input on every K-th step.
 * Percentiles interpolate linearly between order statistics (numpy's
 * default); they are found by selection (Hoare's FIND, as in Wirth's
 * "Algorithms + Data Structures = Programs") on a copy, O(values) a step.
 */
export const startTraceSource = `/** A trace being recorded: the TRACEABLE index of each traced layer, the period, the series by layer. */
interface Trace {
  readonly every: number;
  readonly unit: number | undefined;
  readonly layers: readonly number[];
  readonly series: Record<string, TraceSeries>;
}

/** Checks fit's \`trace\` option; undefined without one. */
function startTrace(options: TraceOptions | undefined): Trace | undefined {
  if (options === undefined) return undefined;
  if (!Number.isInteger(options.every) || options.every < 1) throw new RangeError("trace.every must be a positive integer, got " + String(options.every));
  const unit = options.unit;
  if (unit !== undefined && (!Number.isInteger(unit) || unit < 0)) throw new RangeError("trace.unit must be a non-negative integer, got " + String(unit));
  const layers: number[] = [];
  const series: Record<string, TraceSeries> = {};
  for (const layer of options.layers) {
    const k = TRACEABLE.findIndex(([name]) => name === layer);
    if (k < 0) {
      const known = TRACEABLE.length === 0 ? "none (no layer of this model has a nonlinearity)" : TRACEABLE.map(([name]) => JSON.stringify(name)).join(", ");
      throw new Error("trace: " + JSON.stringify(layer) + " is not a layer with a nonlinearity; the traceable layers are " + known);
    }
    if (unit !== undefined && unit >= TRACEABLE[k]![2]) throw new RangeError("trace.unit " + String(unit) + " is not a unit of " + JSON.stringify(layer) + ", which has " + String(TRACEABLE[k]![2]));
    if (layers.includes(k)) continue;
    layers.push(k);
    series[layer] = { step: [], p15: [], p50: [], p85: [] };
  }
  return { every: options.every, unit, layers, series };
}`;

export const recordTraceSource = `/** Records step \`step\`: the percentiles of each traced layer's value (\`values\` in TRACEABLE order, batchSize examples). */
function recordTrace(trace: Trace, step: number, values: readonly Float32Array[], batchSize: number): void {
  for (const k of trace.layers) {
    const [layer, floats, units] = TRACEABLE[k]!;
    const all = values[k]!.subarray(0, batchSize * floats);
    // one unit: every units-th value from that unit's first (channels last)
    const chosen = trace.unit === undefined ? all.slice() : Float32Array.from({ length: all.length / units }, (_, i) => all[i * units + trace.unit!]!);
    const [p15, p50, p85] = percentiles(chosen, [15, 50, 85]);
    const s = trace.series[layer]!;
    s.step.push(step);
    s.p15.push(p15!);
    s.p50.push(p50!);
    s.p85.push(p85!);
  }
}

/**
 * Percentiles \`ps\` (ascending, 0 to 100) of the values of \`a\`, which it reorders: at p, the value at
 * rank (count - 1) * p / 100, interpolated between the two order statistics around it.
 */
function percentiles(a: Float32Array, ps: readonly number[]): number[] {
  let from = 0; // ranks below \`from\` are settled: selections further up leave them alone
  return ps.map((p) => {
    const at = ((a.length - 1) * p) / 100;
    const k = Math.floor(at);
    select(a, from, a.length - 1, k);
    from = k;
    if (at === k) return a[k]!;
    let next = Infinity; // the next order statistic: the least value above rank k
    for (let i = k + 1; i < a.length; i++) next = Math.min(next, a[i]!);
    return a[k]! + (next - a[k]!) * (at - k);
  });
}

/** Reorders a[lo..hi] so that a[k] holds the value of rank k, none greater before it and none less after it. */
function select(a: Float32Array, lo: number, hi: number, k: number): void {
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (pivot < a[j]!) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (j < k) lo = i;
    if (k < i) hi = j;
  }
}`;

/**
 * recalibrate's statistics: per channel, the count, mean and sum of squared
 * deviations (M2) of every batch so far, in float64. Each batch's own mean
 * and M2 are two-pass; batches combine by Chan, Golub and LeVeque's parallel
 * update (delta = mean_b - mean_a: mean += delta * n_b / n, M2 += M2_b +
 * delta^2 * n_a * n_b / n), so no large sums of squares cancel.
 */
export const momentsSource = `/**
 * Adds a batch to running per-channel moments \`acc\` = [count, mean of each channel..., M2 of each channel...].
 * \`x\` is [outer, channels, inner] row-major: each channel has one run of \`inner\` values per outer index.
 */
function addMoments(acc: Float64Array, x: Float32Array, outer: number, channels: number, inner: number): void {
  const count = outer * inner;
  const before = acc[0]!;
  const total = before + count;
  const mean = new Float64Array(channels);
  const m2 = new Float64Array(channels);
  // In memory order: the channel's runs of \`inner\` values, one per outer index.
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const at = (o * channels + c) * inner;
      let sum = 0;
      for (let i = at; i < at + inner; i++) sum += x[i]!;
      mean[c] = mean[c]! + sum;
    }
  }
  for (let c = 0; c < channels; c++) mean[c] = mean[c]! / count;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const at = (o * channels + c) * inner;
      const m = mean[c]!;
      let squares = 0;
      for (let i = at; i < at + inner; i++) squares += (x[i]! - m) ** 2;
      m2[c] = m2[c]! + squares;
    }
  }
  for (let c = 0; c < channels; c++) {
    const delta = mean[c]! - acc[1 + c]!;
    acc[1 + c] = acc[1 + c]! + (delta * count) / total;
    acc[1 + channels + c] = acc[1 + channels + c]! + m2[c]! + (delta * delta * before * count) / total;
  }
  acc[0] = total;
}`;

/** fit, evaluate and predict: the same for every model; they call the model's trainOnBatch and forward methods. */
export function trainerLoops(o: { inSize: number; labelSize: number; outSize: number; accuracy: boolean; tracing: boolean }): {
  fitSteps: string[];
  fit: string[];
  fitAsync: string[];
  evaluate: string[];
  predict: string[];
  recalibrateLayer: string[];
} {
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
    o.tracing
      ? `    const loss = this.trainStep(xb.subarray(0, n * ${o.inSize}), yb.subarray(0, n * ${o.labelSize}), n, trace);`
      : `    const loss = this.trainOnBatch(xb.subarray(0, n * ${o.inSize}), yb.subarray(0, n * ${o.labelSize}), n);`,
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
  // The trace option is checked (and its series created) before the first step.
  const start = [
    'const history: Record<string, number[]> = {};',
    'const trace = startTrace(options.trace);',
    `const steps = this.fitSteps(x, y, options, history${o.tracing ? ', trace' : ''});`,
  ];
  const withTrace = (fields: string) => `return trace === undefined ? { ${fields} } : { ${fields}, trace: trace.series };`;
  const fit = [...start, 'while (!steps.next().done);', withTrace('history')];
  const fitAsync = [
    ...start,
    'let yielded = Date.now();',
    'while (!steps.next().done) {',
    '  // Give timers, I/O and signal handlers a turn every 20 ms, then honour a stop request.',
    '  if (Date.now() - yielded >= 20) {',
    '    await nextTurn();',
    '    yielded = Date.now();',
    '  }',
    `  if (options.signal?.aborted) ${withTrace('history, stopped: true')}`,
    '}',
    withTrace('history, stopped: false'),
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
    'const training = options.training ?? false;',
    `const out = new Float32Array(count * ${o.outSize});`,
    'for (let start = 0; start < count; start += batchSize) {',
    '  const n = Math.min(batchSize, count - start);',
    `  out.set(this.predictBatch(n, x.subarray(start * ${o.inSize}, (start + n) * ${o.inSize}), training), start * ${o.outSize});`,
    '}',
    'return out;',
  ];
  // One batchnorm layer: the moments of its input chunk by chunk, then the moving statistics, if finite.
  const recalibrateLayer = [
    'const acc = new Float64Array(1 + 2 * channels);',
    'for (let start = 0; start < count; start += batchSize) {',
    '  const n = Math.min(batchSize, count - start);',
    `  addMoments(acc, forward(n, x.subarray(start * ${o.inSize}, (start + n) * ${o.inSize})), n * outer, channels, inner);`,
    '}',
    'const newMean = Float32Array.from(acc.subarray(1, 1 + channels));',
    'const newVariance = Float32Array.from(acc.subarray(1 + channels), (m2) => m2 / acc[0]!);',
    'if (!allFinite(newMean, channels) || !allFinite(newVariance, channels)) {',
    '  throw new Error("recalibrate: the statistics of the input of " + layer + " are not finite; the moving statistics are kept as they were");',
    '}',
    'mean.set(newMean);',
    'variance.set(newVariance);',
  ];
  return { fitSteps, fit, fitAsync, evaluate, predict, recalibrateLayer };
}
