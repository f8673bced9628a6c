/**
 * Training charts: the points plotted are the history's, validation series
 * are told apart, the SVG is deterministic, and hostile run names are text.
 */
import { describe, expect, it } from 'vitest';
import { chartPoints, chartSpec, renderChart } from '../../src/report/chart.js';

const history = { loss: [1.5, 0.75, 0.5], accuracy: [0.5, 0.75, 0.875], val_loss: [1.25, 0.875, NaN], val_accuracy: [0.625, 0.75, 0.8] };

describe('training chart', () => {
  it('plots every finite history value by epoch, metric and split', () => {
    const points = chartPoints([{ name: 'a', history }], ['loss', 'accuracy']);
    expect(points).toHaveLength(11); // 12 values, one NaN left out
    expect(points).toContainEqual({ epoch: 2, run: 'a', metric: 'loss', split: 'validation', value: 0.875 });
    expect(points).toContainEqual({ epoch: 3, run: 'a', metric: 'accuracy', split: 'training', value: 0.875 });
    expect(points.some((p) => p.epoch === 3 && p.metric === 'loss' && p.split === 'validation')).toBe(false);
  });

  it('one panel per metric; accuracy only when a run has it', () => {
    expect(JSON.stringify(chartSpec([{ name: 'a', history: { loss: [1, 0.5] } }], { title: 't' }))).toContain('"sort":["loss"]');
    expect(JSON.stringify(chartSpec([{ name: 'a', history }], { title: 't' }))).toContain('"sort":["loss","accuracy"]');
  });

  it('renders a deterministic SVG with the runs in the legend; names are escaped text', async () => {
    const runs = [{ name: 'BN, lr 0.01', history }, { name: '<script>alert(1)</script> & "x"', history: { loss: [2, 1, 0.9] } }];
    const svg = await renderChart(runs, { title: 'demo </svg>' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('BN, lr 0.01');
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;');
    expect(svg.match(/<\/svg>/g)).toHaveLength(1);
    expect(await renderChart(runs, { title: 'demo </svg>' })).toBe(svg);
  });
});
