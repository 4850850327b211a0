/**
 * Discrete information measures of the disentanglement metrics, in nats, as disentanglement_lib's
 * utils.py (which calls sklearn's mutual_info_score): plug-in estimates from the empirical joint
 * distribution of two label arrays, and the histogram discretiser that turns a continuous code
 * into such labels.
 */

/**
 * Labels of a code after disentanglement_lib's histogram discretiser:
 * np.digitize(x, np.histogram(x, numBins)[1][:-1]). The numBins equal-width bins span
 * [min, max] of the values (edges e_k = min + k (max - min) / numBins, k = 0..numBins); a value's
 * label is the number of edges e_0..e_{numBins-1} at or below it, so labels run 1..numBins and the
 * maximum falls in the last bin. Constant values (max = min) all get one label, as numpy widens
 * the range to [min - 0.5, max + 0.5]. Shapes: values [n]; returns [n].
 */
export function histogramDiscretize(values: ArrayLike<number>, numBins: number): Int32Array {
  if (!Number.isInteger(numBins) || numBins < 1) {
    throw new RangeError(`histogramDiscretize: numBins must be a positive integer; got ${numBins}`);
  }
  const n = values.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) throw new RangeError(`histogramDiscretize: values must be finite; got ${v} at ${i}`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const edges = new Float64Array(numBins);
  const step = (hi - lo) / numBins;
  for (let k = 0; k < numBins; k++) edges[k] = lo + k * step;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    // The first guess from the bin width, corrected against the edges themselves so that a value
    // equal to an edge lands where np.digitize puts it.
    let k = Math.min(numBins, Math.max(0, Math.floor((v - lo) / step) + 1));
    while (k > 0 && edges[k - 1] > v) k--;
    while (k < numBins && edges[k] <= v) k++;
    out[i] = k;
  }
  return out;
}

/** Labels renumbered 0..k-1 in order of first appearance, and k. */
function compact(labels: ArrayLike<number>): { ids: Int32Array; k: number } {
  const map = new Map<number, number>();
  const ids = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    let id = map.get(labels[i]);
    if (id === undefined) {
      id = map.size;
      map.set(labels[i], id);
    }
    ids[i] = id;
  }
  return { ids, k: map.size };
}

/**
 * Plug-in mutual information I(a; b) = sum_{x,y} p(x,y) ln(p(x,y) / (p(x) p(y))) of two label
 * arrays of the same length, from their empirical joint distribution, in nats (sklearn's
 * mutual_info_score). Shapes: a, b [n].
 */
export function discreteMutualInfo(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (b.length !== n) throw new RangeError(`discreteMutualInfo: a and b must have the same length; got ${n} and ${b.length}`);
  if (n === 0) return 0;
  const ca = compact(a);
  const cb = compact(b);
  const joint = new Float64Array(ca.k * cb.k);
  const pa = new Float64Array(ca.k);
  const pb = new Float64Array(cb.k);
  for (let i = 0; i < n; i++) {
    joint[ca.ids[i] * cb.k + cb.ids[i]]++;
    pa[ca.ids[i]]++;
    pb[cb.ids[i]]++;
  }
  let mi = 0;
  for (let x = 0; x < ca.k; x++) {
    for (let y = 0; y < cb.k; y++) {
      const c = joint[x * cb.k + y];
      // p(x,y) ln(p(x,y) / (p(x) p(y))) with counts: (c/n) ln(c n / (n_x n_y)).
      if (c > 0) mi += (c / n) * Math.log((c * n) / (pa[x] * pb[y]));
    }
  }
  // Rounding can leave -1e-17 for independent labels; MI is never negative.
  return Math.max(0, mi);
}

/** Plug-in entropy H(a) = -sum_x p(x) ln p(x) of a label array, in nats. Shape: a [n]. */
export function discreteEntropy(a: ArrayLike<number>): number {
  const n = a.length;
  if (n === 0) return 0;
  const { ids, k } = compact(a);
  const counts = new Float64Array(k);
  for (let i = 0; i < n; i++) counts[ids[i]]++;
  let h = 0;
  for (const c of counts) h -= (c / n) * Math.log(c / n);
  return Math.max(0, h);
}
