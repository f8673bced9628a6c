/**
 * The loss and metric of a training graph: the labels input, the `loss` node
 * and (with `metrics: ["accuracy"]`) the `accuracy` node, chosen as Keras does.
 *
 * A prediction made by a softmax over the last axis (categorical and sparse
 * categorical crossentropy) or by a sigmoid (binary crossentropy) is scored
 * from the activation's input with `from_logits: true`: the same value up to
 * the probability clipping, without log(0) and with a gradient that does not
 * vanish when the activation saturates. Accuracy still reads the prediction.
 *
 *   %dense_1: f32[N,10] = softmax(%dense_1/linear) {axis=1}
 *   %loss: f32[1] = loss(%dense_1/linear, %labels) {kind="categorical_crossentropy", from_logits=true}
 *   %accuracy: f32[1] = accuracy(%dense_1, %labels) {kind="categorical"}
 */
import type { TrainingSpec } from '../spec/training.js';
import { tensor, type TensorType } from '../ir/types.js';
import { lossReadsLogits } from '../ops/activation.js';
import type { AccuracyKind } from '../ops/loss.js';
import type { GraphBuilder } from './builder.js';

export type LossName = TrainingSpec['loss'];


export interface LossValues {
  readonly loss: string;
  readonly accuracy?: string;
  /** The labels input that was added. */
  readonly labels: string;
}

export function buildLoss(
  b: GraphBuilder,
  training: { readonly loss: LossName; readonly metrics?: readonly 'accuracy'[] },
  prediction: string,
  labelsName = 'labels',
): LossValues {
  const predType = b.typeOf(prediction);
  if (predType.shape[0] !== 'N' || predType.shape.length < 2) {
    throw new Error(`autodiff: the prediction ${prediction} must be a batch of rank >= 2, got [${predType.shape.join(', ')}]`);
  }
  const sparse = training.loss === 'sparse_categorical_crossentropy';
  const labels = b.addInput(labelsName, sparse ? tensor(predType.shape.slice(0, -1)) : predType);
  const scored = lossInput(b, training.loss, prediction);
  const loss = b.naming('loss', 'loss').op('loss', [scored.value, labels], { kind: training.loss, from_logits: scored.fromLogits });
  if (!training.metrics?.includes('accuracy')) return { loss, labels };
  const kind = accuracyKind(training.loss, predType);
  const accuracy = b.naming('accuracy', 'accuracy').op('accuracy', [prediction, labels], { kind });
  return { loss, accuracy, labels };
}

/** What the loss reads: the logits under a final softmax or sigmoid that the loss can absorb, else the prediction. */
function lossInput(b: GraphBuilder, loss: LossName, prediction: string): { value: string; fromLogits: boolean } {
  const node = b.nodes.find((n) => n.result === prediction);
  if (node === undefined || !lossReadsLogits(node, loss)) return { value: prediction, fromLogits: false };
  return { value: node.operands[0]!, fromLogits: true };
}

/** Keras's choice for "accuracy": by the loss, and for regression losses by the prediction's last dimension. */
export function accuracyKind(loss: LossName, prediction: TensorType): AccuracyKind {
  switch (loss) {
    case 'binary_crossentropy':
      return 'binary';
    case 'categorical_crossentropy':
      return 'categorical';
    case 'sparse_categorical_crossentropy':
      return 'sparse_categorical';
    default:
      return prediction.shape[prediction.shape.length - 1] === 1 ? 'binary' : 'categorical';
  }
}
