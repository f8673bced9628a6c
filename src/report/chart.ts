/**
 * Training curves as SVG, drawn by Vega-Lite (compiled to Vega and rendered
 * headless, no canvas needed): one panel per metric (loss, accuracy), epochs
 * on x, one colour per run, dashed lines for validation. `modelc train` draws
 * one run; the demo overlays its three runs. `renderVegaLite` draws any other
 * chart (the experiments'), and `svgToPng` turns an SVG into a PNG.
 */
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One training run: a name for the legend and Keras-style per-epoch history. */
export interface ChartRun {
  readonly name: string;
  readonly history: Readonly<Record<string, readonly number[]>>;
}

export interface ChartOptions {
  readonly title: string;
  /** Which metrics get a panel, in order (default: loss, then accuracy when any run has it). */
  readonly metrics?: readonly string[];
}

interface Point {
  epoch: number;
  run: string;
  metric: string;
  split: string;
  value: number;
}

/** The plotted points: history key `val_<m>` is metric m on the validation split; non-finite values are left out. */
export function chartPoints(runs: readonly ChartRun[], metrics: readonly string[]): Point[] {
  const points: Point[] = [];
  for (const run of runs) {
    for (const metric of metrics) {
      for (const [split, key] of [['training', metric], ['validation', `val_${metric}`]] as const) {
        (run.history[key] ?? []).forEach((value, i) => {
          if (Number.isFinite(value)) points.push({ epoch: i + 1, run: run.name, metric, split, value });
        });
      }
    }
  }
  return points;
}

/** The Vega-Lite specification of the chart (exported for tests and for users who restyle it). */
export function chartSpec(runs: readonly ChartRun[], options: ChartOptions): TopLevelSpec {
  const metrics = options.metrics ?? ['loss', ...(runs.some((r) => r.history['accuracy']) ? ['accuracy'] : [])];
  const epochs = Math.max(1, ...runs.map((r) => r.history['loss']?.length ?? 0));
  return {
    title: options.title,
    data: { values: chartPoints(runs, metrics) },
    facet: { column: { field: 'metric', type: 'nominal', sort: [...metrics], title: null } },
    spec: {
      width: 320,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [1, epochs] }, axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'run', type: 'nominal', title: 'run', sort: runs.map((r) => r.name) },
        strokeDash: { field: 'split', type: 'nominal', title: null, sort: ['training', 'validation'] },
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: { font: 'sans-serif', background: 'white' },
  };
}

/** The chart as a standalone SVG document. */
export async function renderChart(runs: readonly ChartRun[], options: ChartOptions): Promise<string> {
  return renderVegaLite(chartSpec(runs, options));
}

/** Any Vega-Lite chart as a standalone SVG document (rendered headless). */
export async function renderVegaLite(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * An SVG document as PNG bytes at `scale` times its size, drawn by resvg
 * (loaded only when a PNG is asked for). Text uses the system's fonts; on a
 * machine without any, the lines and marks are drawn and the text is not.
 */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js');
  const image = new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
  return new Uint8Array(image.render().asPng());
}
