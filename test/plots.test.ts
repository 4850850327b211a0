/**
 * Plots (core/tracking/plots.ts): a Vega-Lite spec rendered to PNG without a browser, with the
 * shipped font.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { fontFile, svgToPng, vegaLiteToSvg, writePlot } from '../core/tracking/plots';

/** Pixels of a decoded PNG whose RGB is within `tol` of `rgb`. */
function count(png: PNG, rgb: [number, number, number], tol = 8, box?: { x0: number; y0: number; x1: number; y1: number }): number {
  let n = 0;
  const b = box ?? { x0: 0, y0: 0, x1: png.width, y1: png.height };
  for (let y = b.y0; y < b.y1; y++) {
    for (let x = b.x0; x < b.x1; x++) {
      const i = (y * png.width + x) * 4;
      if (Math.abs(png.data[i] - rgb[0]) <= tol && Math.abs(png.data[i + 1] - rgb[1]) <= tol && Math.abs(png.data[i + 2] - rgb[2]) <= tol) n++;
    }
  }
  return n;
}

describe('plots', () => {
  it('Should ship its font with the package', () => {
    expect(fs.statSync(fontFile()).size).to.be.above(100_000);
  });

  it('Should render a bar chart whose bars cover the area their values give, at the requested scale', async function () {
    this.timeout(30000);
    const spec = {
      width: 200,
      height: 100,
      data: { values: [{ k: 'a', v: 1 }, { k: 'b', v: 3 }] },
      mark: { type: 'bar', color: '#ff0000' },
      encoding: { x: { field: 'k', type: 'nominal', axis: null }, y: { field: 'v', type: 'quantitative', axis: null, scale: { domain: [0, 4] } } },
      config: { view: { stroke: null }, axis: { grid: false } },
      padding: 0,
    };
    const svg = await vegaLiteToSvg(spec);
    expect(svg).to.match(/^<svg/);
    const png = PNG.sync.read(svgToPng(svg, 1));
    expect([png.width, png.height]).to.deep.equal([200, 100]);
    // bars: two bands of width ~ bandwidth, heights 1/4 and 3/4 of the plot: red area in ratio 1:3
    const left = count(png, [255, 0, 0], 8, { x0: 0, y0: 0, x1: 100, y1: 100 });
    const right = count(png, [255, 0, 0], 8, { x0: 100, y0: 0, x1: 200, y1: 100 });
    expect(left).to.be.above(0);
    expect(right / left).to.be.closeTo(3, 0.15);
    const png2 = PNG.sync.read(svgToPng(svg, 2));
    expect([png2.width, png2.height]).to.deep.equal([400, 200]);
  });

  it('Should draw text with the shipped font and write the file atomically', async function () {
    this.timeout(30000);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-plot-')), 'title.png');
    const spec = { width: 100, height: 20, title: { text: 'NLL', color: '#000000', fontSize: 20 }, data: { values: [] }, mark: 'point', padding: 0 };
    await writePlot(file, spec, 1);
    const png = PNG.sync.read(fs.readFileSync(file));
    // the title's glyphs are dark pixels above the plot area; without a font there would be none
    expect(count(png, [0, 0, 0], 100)).to.be.above(30);
    expect(fs.readdirSync(path.dirname(file))).to.deep.equal(['title.png']);
  });
});
