/**
 * `linear`, the identity activation. A spec that asks for it keeps it in the
 * IR, so that `remove-identity` has something to remove; its kernel is an
 * alias and its gradient is dy itself.
 */
import { defineActivation } from './define.js';

export const linearActivation = defineActivation({
  name: 'linear',
  summary: 'the identity',
  attrs: {},
  form: 'identity',
  onnx: (e, x, y) => e.emit('Identity', [x], [y]),
  examples: [{}],
});
