// Runs a generated inference module on one input for closing_table.py (local only, not CI):
//   node run_module.mjs <module.js> <weights.safetensors | -> <input.f32> <output.f32> <repeats>
// Writes the output as raw little-endian float32 and prints {"ms": median predict time at batch 1}.
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [modulePath, weightsPath, inputPath, outputPath, repeats] = process.argv.slice(2);
const mod = await import(pathToFileURL(modulePath).href);
const model = weightsPath === '-' ? new mod.Model() : new mod.Model(readFileSync(weightsPath));
const bytes = readFileSync(inputPath);
const x = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
let y = model.predict(x, 1);
const times = [];
for (let i = 0; i < Number(repeats); i++) {
  const t = performance.now();
  y = model.predict(x, 1);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
writeFileSync(outputPath, new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
console.log(JSON.stringify({ ms: times[Math.floor(times.length / 2)] ?? NaN }));
