// The onnxruntime-node runtime (native CPU execution provider, one intra-op and
// one inter-op thread, sequential execution, all graph optimizations) running
// modelc's ONNX export of the -O graph.
// Session and steps: onnx-session.js.
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { onnxHandlers } from './onnx-session.js';
import { serve } from './worker.js';

const require = createRequire(import.meta.url);

serve({
  async init() {
    return {
      available: true,
      info: { version: require('onnxruntime-node/package.json').version, intraOpNumThreads: 1, interOpNumThreads: 1 },
    };
  },
  ...onnxHandlers(() => ort, 'onnxruntime', { intraOpNumThreads: 1, interOpNumThreads: 1 }),
});
