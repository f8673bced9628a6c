/**
 * The ONNX side of a TF.js differential case: the `-O` graph exported to ONNX
 * and run in onnxruntime on the case's feeds, so a layer test can compare the
 * export with TF.js as it does the interpreter and the generated module.
 */
import ort from 'onnxruntime-node';
import { exportOnnx } from '../../src/formats/onnx.js';
import { BATCH, type Output, type Prepared } from './tfjs.js';

/** onnxruntime's outputs for the exported `-O` graph, in the graph's output order. */
export async function onnxOutputs(p: Prepared): Promise<Output[]> {
  const graph = p.optimized;
  const session = await ort.InferenceSession.create(exportOnnx(graph));
  try {
    const feeds = Object.fromEntries(
      graph.inputs.map((input, k) => {
        const shape = [BATCH, ...input.type.shape.slice(1).map((d) => d as number)];
        return [session.inputNames[k]!, new ort.Tensor('float32', p.feeds[input.name]!, shape)];
      }),
    );
    const out = await session.run(feeds);
    return session.outputNames.map((name) => ({ shape: out[name]!.dims.map(Number), data: out[name]!.data as Float32Array }));
  } finally {
    await session.release();
  }
}
