/**
 * A linear support vector classifier on one input feature, written for SAP (disentanglement_lib
 * fits sklearn's `svm.LinearSVC(C=0.01, class_weight="balanced")` to each (code, factor) pair; no
 * maintained npm package offers it). It solves LinearSVC's problem (liblinear, squared hinge
 * loss, L2 penalty, intercept as an extra input of value 1 and so penalised too):
 *
 *   min_{w,b} 0.5 (w^2 + b^2) + sum_i c_i max(0, 1 - y_i (w x_i + b))^2,   y_i in {-1, +1},
 *
 * one-vs-rest for K > 2 classes (liblinear's weighting: c_i = C * weight_k for the positives of
 * class k and C for the rest), one problem for 2 classes (c_i = C * weight of the class of i).
 * "balanced" weights are weight_k = n / (K n_k). The problem is strictly convex in two unknowns;
 * it is solved to a gradient norm of 1e-10 by Newton's method with the generalised Hessian of the
 * squared hinge and a backtracking line search, where liblinear stops at its tolerance 1e-4, so
 * predictions can differ from sklearn's only for points within that tolerance of a boundary.
 * Prediction: the class of largest w_k x + b_k (2 classes: the larger class when w x + b > 0).
 */

/** Settings of the classifier; the defaults are SAP's. */
export interface LinearSvmOptions {
  /** Penalty C of the hinge terms. Default 0.01. */
  c: number;
  /** 'balanced': weight_k = n / (K n_k); 'none': every class weight 1. Default 'balanced'. */
  classWeight: 'balanced' | 'none';
}

export const DEFAULT_LINEAR_SVM_OPTIONS: Readonly<LinearSvmOptions> = Object.freeze({ c: 0.01, classWeight: 'balanced' });

/** The objective above at (w, b). x, y, c: [n]. */
function objective(w: number, b: number, x: Float64Array, y: Float64Array, c: Float64Array): number {
  let f = 0.5 * (w * w + b * b);
  for (let i = 0; i < x.length; i++) {
    const slack = 1 - y[i] * (w * x[i] + b);
    if (slack > 0) f += c[i] * slack * slack;
  }
  return f;
}

/** The minimiser (w, b) of the objective above. x, y (+-1), c (per-example penalties): [n]. */
export function solveSquaredHinge(x: Float64Array, y: Float64Array, c: Float64Array): { w: number; b: number } {
  let w = 0;
  let b = 0;
  for (let iter = 0; iter < 100; iter++) {
    let gw = w;
    let gb = b;
    let hww = 1;
    let hwb = 0;
    let hbb = 1;
    for (let i = 0; i < x.length; i++) {
      const slack = 1 - y[i] * (w * x[i] + b);
      if (slack <= 0) continue;
      gw -= 2 * c[i] * y[i] * slack * x[i];
      gb -= 2 * c[i] * y[i] * slack;
      hww += 2 * c[i] * x[i] * x[i];
      hwb += 2 * c[i] * x[i];
      hbb += 2 * c[i];
    }
    if (Math.hypot(gw, gb) < 1e-10) break;
    const det = hww * hbb - hwb * hwb;
    const dw = -(hbb * gw - hwb * gb) / det;
    const db = -(hww * gb - hwb * gw) / det;
    const f0 = objective(w, b, x, y, c);
    const slope = gw * dw + gb * db;
    let t = 1;
    while (t > 1e-12 && objective(w + t * dw, b + t * db, x, y, c) > f0 + 1e-4 * t * slope) t /= 2;
    w += t * dw;
    b += t * db;
  }
  return { w, b };
}

/** A fitted one-feature linear SVM. */
export class LinearSvm1d {
  private constructor(
    /** The distinct training labels, ascending. */
    readonly classes: number[],
    /** Slopes: one for 2 classes (the larger class's side), one per class for K > 2. */
    readonly w: Float64Array,
    /** Intercepts, as w. */
    readonly b: Float64Array,
  ) {}

  /** Fits to inputs x [n] and labels [n]. */
  static fit(x: ArrayLike<number>, labels: ArrayLike<number>, options: Partial<LinearSvmOptions> = {}): LinearSvm1d {
    const o = { ...DEFAULT_LINEAR_SVM_OPTIONS, ...options };
    const n = x.length;
    if (labels.length !== n) throw new RangeError(`LinearSvm1d.fit: x and labels must have the same length; got ${n} and ${labels.length}`);
    const classes = Array.from(new Set(Array.from(labels))).sort((a, b) => a - b);
    const K = classes.length;
    if (K < 2) return new LinearSvm1d(classes, new Float64Array(0), new Float64Array(0));
    const counts = new Map<number, number>();
    for (let i = 0; i < n; i++) counts.set(labels[i], (counts.get(labels[i]) ?? 0) + 1);
    const weight = (label: number) => (o.classWeight === 'balanced' ? n / (K * counts.get(label)!) : 1);
    const xs = Float64Array.from(x);
    const y = new Float64Array(n);
    const c = new Float64Array(n);
    if (K === 2) {
      for (let i = 0; i < n; i++) {
        y[i] = labels[i] === classes[1] ? 1 : -1;
        c[i] = o.c * weight(labels[i]);
      }
      const { w, b } = solveSquaredHinge(xs, y, c);
      return new LinearSvm1d(classes, Float64Array.of(w), Float64Array.of(b));
    }
    const ws = new Float64Array(K);
    const bs = new Float64Array(K);
    classes.forEach((cls, k) => {
      for (let i = 0; i < n; i++) {
        const positive = labels[i] === cls;
        y[i] = positive ? 1 : -1;
        c[i] = positive ? o.c * weight(cls) : o.c;
      }
      const { w, b } = solveSquaredHinge(xs, y, c);
      ws[k] = w;
      bs[k] = b;
    });
    return new LinearSvm1d(classes, ws, bs);
  }

  /** Predicted labels of inputs x [n]. [n] */
  predict(x: ArrayLike<number>): Int32Array {
    const out = new Int32Array(x.length);
    const K = this.classes.length;
    for (let i = 0; i < x.length; i++) {
      if (K < 2) out[i] = this.classes[0] ?? 0;
      else if (K === 2) out[i] = this.classes[this.w[0] * x[i] + this.b[0] > 0 ? 1 : 0];
      else {
        let best = 0;
        for (let k = 1; k < K; k++) if (this.w[k] * x[i] + this.b[k] > this.w[best] * x[i] + this.b[best]) best = k;
        out[i] = this.classes[best];
      }
    }
    return out;
  }
}
