/**
 * Progress output of `modelc train`: one summary line per epoch without a
 * terminal; on a terminal a cli-progress bar with batch count, running loss
 * and accuracy and time left, cleared when the epoch's line is printed.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress, epochLine } from '../../src/cli/progress.js';

function sink(tty: boolean) {
  let text = '';
  const stream = Object.assign(new Writable({ write: (c, _e, done) => ((text += String(c)), done()) }), { isTTY: tty, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return { stream, text: () => text };
}

describe('progress', () => {
  it('formats an epoch like Keras: loss, accuracy, validation, seconds', () => {
    expect(epochLine(1, 5, { loss: 0.30125, accuracy: 0.91, val_loss: 0.28, val_accuracy: 0.92 }, 4.06)).toBe('epoch 2/5: loss 0.3013 - accuracy 0.9100 - val_loss 0.2800 - val_accuracy 0.9200 (4.1 s)');
    expect(epochLine(0, 1, { loss: 2 }, 0)).toBe('epoch 1/1: loss 2.0000 (0.0 s)');
  });

  it('without a terminal: exactly one line per epoch', () => {
    const s = sink(false);
    const p = createProgress({ epochs: 2, batches: 3, stream: s.stream, interactive: false });
    for (let e = 0; e < 2; e++) {
      for (let b = 0; b < 3; b++) p.batch(b, { loss: 1 / (b + 1), accuracy: 0.5 });
      p.epoch(e, { loss: 0.6, accuracy: 0.5 });
    }
    expect(s.text().split('\n').filter((l) => l !== '')).toEqual([
      expect.stringMatching(/^epoch 1\/2: loss 0\.6000 - accuracy 0\.5000 \(\d+\.\d s\)$/),
      expect.stringMatching(/^epoch 2\/2: loss 0\.6000 - accuracy 0\.5000 \(\d+\.\d s\)$/),
    ]);
  });

  it('on a terminal: a bar with the batch count and the running means, then the epoch line', () => {
    const s = sink(true);
    const p = createProgress({ epochs: 3, batches: 4, stream: s.stream, interactive: true });
    p.batch(0, { loss: 1, accuracy: 0 });
    p.batch(1, { loss: 0.5, accuracy: 1 });
    p.stop(); // an interrupt mid-epoch: the bar is drawn and removed
    expect(s.text()).toMatch(/epoch 1\/3 \[.*\] 2\/4 batches \| loss 0\.7500 \| accuracy 0\.5000 \| .* left/);
    p.batch(0, { loss: 2 });
    p.epoch(0, { loss: 2 });
    // The bar is cleared (ESC[2K) before the epoch's line.
    expect(s.text()).toMatch(/\x1b\[2Kepoch 1\/3: loss 2\.0000 \(\d+\.\d s\)\n$/);
  });
});
