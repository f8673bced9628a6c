/**
 * What `modelc train` shows while it trains. On a terminal: a progress bar
 * per epoch (cli-progress) with the batch count, running loss and accuracy
 * and the time left, replaced by the epoch's summary line when it ends. When
 * stderr is not a terminal (CI logs, pipes): only the summary line per epoch.
 */
import cliProgress from 'cli-progress';


export interface EpochLogs {
  readonly loss: number;
  readonly accuracy?: number | undefined;
  readonly val_loss?: number | undefined;
  readonly val_accuracy?: number | undefined;
}

export interface Progress {
  /** After each batch: the batch index within the epoch and that batch's logs. */
  batch(batch: number, logs: EpochLogs): void;
  /** After each epoch: its logs (means over the epoch, validation included). */
  epoch(epoch: number, logs: EpochLogs): void;
  /** Removes a bar left mid-epoch (an interrupt or an error). */
  stop(): void;
}

function fixed(x: number | undefined, digits = 4): string {
  return x === undefined ? '-' : x.toFixed(digits);
}

/** `epoch 2/5: loss 0.3012 - accuracy 0.9100 - val_loss 0.2804 - val_accuracy 0.9200 (4.1 s)` */
export function epochLine(epoch: number, epochs: number, logs: EpochLogs, seconds: number): string {
  const parts = [`loss ${fixed(logs.loss)}`];
  if (logs.accuracy !== undefined) parts.push(`accuracy ${fixed(logs.accuracy)}`);
  if (logs.val_loss !== undefined) parts.push(`val_loss ${fixed(logs.val_loss)}`);
  if (logs.val_accuracy !== undefined) parts.push(`val_accuracy ${fixed(logs.val_accuracy)}`);
  return `epoch ${epoch + 1}/${epochs}: ${parts.join(' - ')} (${seconds.toFixed(1)} s)`;
}

export function createProgress(options: { epochs: number; batches: number; stream: NodeJS.WritableStream; interactive: boolean }): Progress {
  const { epochs, batches, stream } = options;
  let bar: cliProgress.SingleBar | undefined;
  let started = Date.now();
  let current = 0; // the epoch in progress, from 0
  // Running means over the epoch so far, as Keras's progress bar shows them.
  let seen = 0;
  let lossSum = 0;
  let accuracySum = 0;
  const write = (line: string) => stream.write(line + '\n');
  return {
    batch(batch, logs) {
      if (batch === 0) {
        started = Date.now();
        seen = lossSum = accuracySum = 0;
        if (options.interactive) {
          bar = new cliProgress.SingleBar(
            {
              stream,
              format: `epoch {epoch}/${epochs} [{bar}] {value}/{total} batches | loss {loss}{acc} | {eta_formatted} left`,
              barsize: 24,
              hideCursor: true,
              clearOnComplete: true,
              etaBuffer: 50,
              fps: 10,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(batches, 0, { epoch: current + 1, loss: '-', acc: '' });
        }
      }
      seen++;
      lossSum += logs.loss;
      if (logs.accuracy !== undefined) accuracySum += logs.accuracy;
      bar?.update(batch + 1, {
        epoch: current + 1,
        loss: fixed(lossSum / seen),
        acc: logs.accuracy === undefined ? '' : ` | accuracy ${fixed(accuracySum / seen)}`,
      });
    },
    epoch(epoch, logs) {
      bar?.stop();
      bar = undefined;
      write(epochLine(epoch, epochs, logs, (Date.now() - started) / 1000));
      current = epoch + 1;
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
