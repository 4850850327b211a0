/**
 * Gradient-boosted decision trees for classification, written for DCI (no maintained npm package
 * offers them with feature importances). It follows scikit-learn's GradientBoostingClassifier with
 * its defaults, which disentanglement_lib's DCI uses (`ensemble.GradientBoostingClassifier()`):
 *
 * - log-loss: one tree per stage for 2 classes (binomial deviance, init = logit of the class-1
 *   rate), K trees per stage for K > 2 classes (multinomial deviance, init = log class rates);
 * - 100 stages, learning rate 0.1, regression trees of depth at most 3 fitted to the residuals
 *   y - p with the squared-error split criterion (which orders splits as sklearn's friedman_mse
 *   does for unit weights), min_samples_split 2, min_samples_leaf 1, no subsampling;
 * - leaf values by one Newton step: sum(r) / sum(p (1 - p)), times (K - 1) / K for K > 2;
 * - feature importances: for each tree, the decrease of squared error sum_t (SS_t - SS_left -
 *   SS_right) over its splits on the feature, divided by n; averaged over the trees with at least
 *   one split, then normalised to sum 1.
 *
 * Differences from sklearn: split thresholds are searched over every feature in index order
 * (sklearn shuffles the features, which only breaks exact ties differently), and there is no
 * early stopping or warm start. Splits are exact (each feature presorted once), not histograms.
 */

/** Settings of the boosted trees; the defaults are scikit-learn's. */
export interface GbtOptions {
  /** Boosting stages. Default 100. */
  nEstimators: number;
  /** Shrinkage of each tree's contribution. Default 0.1. */
  learningRate: number;
  /** Largest depth of a tree (a root split alone is depth 1). Default 3. */
  maxDepth: number;
}

export const DEFAULT_GBT_OPTIONS: Readonly<GbtOptions> = Object.freeze({ nEstimators: 100, learningRate: 0.1, maxDepth: 3 });

/** One regression tree: node arrays, node 0 the root; feature -1 marks a leaf. */
interface Tree {
  feature: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  value: Float64Array;
  nodeCount: number;
}

/** Feature values closer than this are not split apart (sklearn's FEATURE_THRESHOLD). */
const FEATURE_THRESHOLD = 1e-7;
/** A node whose squared-error impurity is at most this is a leaf (sklearn's EPSILON). */
const EPSILON = 2.220446049250313e-16;

/**
 * Grows a regression tree on residuals r [n] level by level. x: [n, d] row-major; order[f]: the
 * sample indices sorted by feature f. Returns the tree (leaf values still to be set), the leaf
 * of each sample [n], and the squared-error decrease of each feature's splits [d].
 */
function growTree(
  x: Float64Array,
  n: number,
  d: number,
  order: Int32Array[],
  r: Float64Array,
  maxDepth: number,
): { tree: Tree; leafOf: Int32Array; decrease: Float64Array } {
  const maxNodes = 2 ** (maxDepth + 1) - 1;
  const tree: Tree = {
    feature: new Int32Array(maxNodes).fill(-1),
    threshold: new Float64Array(maxNodes),
    left: new Int32Array(maxNodes).fill(-1),
    right: new Int32Array(maxNodes).fill(-1),
    value: new Float64Array(maxNodes),
    nodeCount: 1,
  };
  const decrease = new Float64Array(d);
  const nodeOf = new Int32Array(n);
  let frontier = [0];
  for (let depth = 0; depth < maxDepth && frontier.length > 0; depth++) {
    // Slot of each node of this level that may split, -1 for the others.
    const slotOf = new Int32Array(tree.nodeCount).fill(-1);
    const m = frontier.length;
    const cnt = new Float64Array(m);
    const sum = new Float64Array(m);
    const sumSq = new Float64Array(m);
    frontier.forEach((node, s) => (slotOf[node] = s));
    for (let i = 0; i < n; i++) {
      const s = slotOf[nodeOf[i]];
      if (s < 0) continue;
      cnt[s]++;
      sum[s] += r[i];
      sumSq[s] += r[i] * r[i];
    }
    for (let s = 0; s < m; s++) {
      const impurity = cnt[s] > 0 ? sumSq[s] / cnt[s] - (sum[s] / cnt[s]) ** 2 : 0;
      if (cnt[s] < 2 || impurity <= EPSILON) slotOf[frontier[s]] = -1;
    }
    const bestGain = new Float64Array(m).fill(-Infinity);
    const bestFeature = new Int32Array(m).fill(-1);
    const bestThreshold = new Float64Array(m);
    const cntL = new Float64Array(m);
    const sumL = new Float64Array(m);
    const last = new Float64Array(m);
    for (let f = 0; f < d; f++) {
      cntL.fill(0);
      sumL.fill(0);
      const ord = order[f];
      for (let t = 0; t < n; t++) {
        const i = ord[t];
        const s = slotOf[nodeOf[i]];
        if (s < 0) continue;
        const v = x[i * d + f];
        const cl = cntL[s];
        if (cl > 0 && v > last[s] + FEATURE_THRESHOLD) {
          // Squared-error decrease SS_t - SS_l - SS_r = sumL^2/nL + sumR^2/nR - sum^2/n.
          const cr = cnt[s] - cl;
          const sl = sumL[s];
          const sr = sum[s] - sl;
          const gain = (sl * sl) / cl + (sr * sr) / cr - (sum[s] * sum[s]) / cnt[s];
          if (gain > bestGain[s]) {
            bestGain[s] = gain;
            bestFeature[s] = f;
            let thr = last[s] / 2 + v / 2;
            if (thr === v) thr = last[s];
            bestThreshold[s] = thr;
          }
        }
        cntL[s] = cl + 1;
        sumL[s] += r[i];
        last[s] = v;
      }
    }
    const next: number[] = [];
    for (let s = 0; s < m; s++) {
      const node = frontier[s];
      if (slotOf[node] < 0 || bestFeature[s] < 0) continue;
      tree.feature[node] = bestFeature[s];
      tree.threshold[node] = bestThreshold[s];
      tree.left[node] = tree.nodeCount++;
      tree.right[node] = tree.nodeCount++;
      decrease[bestFeature[s]] += Math.max(0, bestGain[s]);
      next.push(tree.left[node], tree.right[node]);
    }
    for (let i = 0; i < n; i++) {
      const node = nodeOf[i];
      const f = tree.feature[node];
      if (f >= 0) nodeOf[i] = x[i * d + f] <= tree.threshold[node] ? tree.left[node] : tree.right[node];
    }
    frontier = next;
  }
  return { tree, leafOf: nodeOf, decrease };
}

function leafOfRow(tree: Tree, x: Float64Array, row: number, d: number): number {
  let node = 0;
  while (tree.feature[node] >= 0) node = x[row * d + tree.feature[node]] <= tree.threshold[node] ? tree.left[node] : tree.right[node];
  return node;
}

/** Row indices 0..n-1 sorted by column f of x [n, d] (ties by index). */
function argsortColumn(x: Float64Array, n: number, d: number, f: number): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  return idx.sort((a, b) => x[a * d + f] - x[b * d + f] || a - b);
}

/**
 * A fitted gradient-boosting classifier. Fit with `GradientBoostingClassifier.fit`; shapes:
 * x [n, numFeatures] row-major float64, labels [n] integers.
 */
export class GradientBoostingClassifier {
  private constructor(
    /** The distinct training labels, ascending; predictions are among them. */
    readonly classes: number[],
    private readonly numFeatures: number,
    private readonly init: Float64Array,
    private readonly stages: Tree[][],
    private readonly learningRate: number,
    /** Normalised importance of each feature (sum 1, or all 0 when no tree split). [numFeatures] */
    readonly featureImportances: Float64Array,
  ) {}

  /** Fits the classifier to x [n, numFeatures] and labels [n]. */
  static fit(x: Float64Array, n: number, numFeatures: number, labels: ArrayLike<number>, options: Partial<GbtOptions> = {}): GradientBoostingClassifier {
    const o = { ...DEFAULT_GBT_OPTIONS, ...options };
    if (x.length !== n * numFeatures || labels.length !== n) {
      throw new RangeError(`GradientBoostingClassifier.fit: x must be [n, ${numFeatures}] and labels [n] with n = ${n}; got ${x.length} and ${labels.length} values`);
    }
    const classes = Array.from(new Set(Array.from(labels))).sort((a, b) => a - b);
    const K = classes.length;
    const d = numFeatures;
    const importance = new Float64Array(d);
    if (K < 2) {
      // One class: nothing to learn; every prediction is that class.
      return new GradientBoostingClassifier(classes, d, new Float64Array(1), [], o.learningRate, importance);
    }
    const classIndex = new Map(classes.map((c, i) => [c, i]));
    const y = Int32Array.from(labels as ArrayLike<number>, (l) => classIndex.get(l)!);
    const width = K === 2 ? 1 : K;
    const counts = new Float64Array(K);
    for (let i = 0; i < n; i++) counts[y[i]]++;
    const init = new Float64Array(width);
    if (K === 2) init[0] = Math.log(counts[1] / counts[0]);
    else for (let k = 0; k < K; k++) init[k] = Math.log(counts[k] / n);
    const raw = new Float64Array(n * width);
    for (let i = 0; i < n; i++) raw.set(init, i * width);
    const order = Array.from({ length: d }, (_, f) => argsortColumn(x, n, d, f));
    const p = new Float64Array(n * width);
    const r = new Float64Array(n);
    const stages: Tree[][] = [];
    let relevantTrees = 0;
    for (let stage = 0; stage < o.nEstimators; stage++) {
      // Probabilities from the raw scores before this stage's trees (as sklearn does).
      for (let i = 0; i < n; i++) {
        if (width === 1) {
          p[i] = 1 / (1 + Math.exp(-raw[i]));
        } else {
          let max = -Infinity;
          for (let k = 0; k < K; k++) max = Math.max(max, raw[i * K + k]);
          let z = 0;
          for (let k = 0; k < K; k++) z += p[i * K + k] = Math.exp(raw[i * K + k] - max);
          for (let k = 0; k < K; k++) p[i * K + k] /= z;
        }
      }
      const trees: Tree[] = [];
      for (let k = 0; k < width; k++) {
        const target = width === 1 ? 1 : k;
        for (let i = 0; i < n; i++) r[i] = (y[i] === target ? 1 : 0) - p[i * width + k];
        const { tree, leafOf, decrease } = growTree(x, n, d, order, r, o.maxDepth);
        // Newton step per leaf: sum(r) / sum(p (1 - p)), times (K - 1) / K for the multinomial loss.
        const num = new Float64Array(tree.nodeCount);
        const den = new Float64Array(tree.nodeCount);
        for (let i = 0; i < n; i++) {
          const q = p[i * width + k];
          num[leafOf[i]] += r[i];
          den[leafOf[i]] += q * (1 - q);
        }
        const factor = width === 1 ? 1 : (K - 1) / K;
        for (let node = 0; node < tree.nodeCount; node++) {
          if (tree.feature[node] >= 0) continue;
          tree.value[node] = Math.abs(den[node]) < 1e-150 ? 0 : (factor * num[node]) / den[node];
        }
        for (let i = 0; i < n; i++) raw[i * width + k] += o.learningRate * tree.value[leafOf[i]];
        if (tree.nodeCount > 1) {
          relevantTrees++;
          for (let f = 0; f < d; f++) importance[f] += decrease[f] / n;
        }
        trees.push(tree);
      }
      stages.push(trees);
    }
    let total = 0;
    for (let f = 0; f < d; f++) total += importance[f];
    if (relevantTrees > 0 && total > 0) for (let f = 0; f < d; f++) importance[f] /= total;
    else importance.fill(0);
    return new GradientBoostingClassifier(classes, d, init, stages, o.learningRate, importance);
  }

  /** Raw scores: [n, 1] (log-odds of the larger class) for 2 classes, [n, K] for K > 2. */
  decisionFunction(x: Float64Array, n: number): Float64Array {
    const d = this.numFeatures;
    const width = this.init.length;
    const raw = new Float64Array(n * width);
    for (let i = 0; i < n; i++) {
      raw.set(this.init, i * width);
      for (const trees of this.stages) {
        for (let k = 0; k < width; k++) {
          const tree = trees[k];
          raw[i * width + k] += this.learningRate * tree.value[leafOfRow(tree, x, i, d)];
        }
      }
    }
    return raw;
  }

  /** Predicted labels of x [n, numFeatures]: the class of largest raw score (ties to the smaller class). [n] */
  predict(x: Float64Array, n: number): Int32Array {
    const out = new Int32Array(n);
    if (this.classes.length < 2) return out.fill(this.classes[0] ?? 0);
    const raw = this.decisionFunction(x, n);
    const width = this.init.length;
    for (let i = 0; i < n; i++) {
      if (width === 1) {
        out[i] = this.classes[raw[i] > 0 ? 1 : 0];
      } else {
        let best = 0;
        for (let k = 1; k < width; k++) if (raw[i * width + k] > raw[i * width + best]) best = k;
        out[i] = this.classes[best];
      }
    }
    return out;
  }
}
