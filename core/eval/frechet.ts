/**
 * The Fréchet distance between two Gaussians fitted to two sets of feature vectors (Heusel et al.
 * 2017, https://arxiv.org/abs/1706.08500, the "FID" when the features are Inception's):
 *
 *   FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
 *
 * the squared 2-Wasserstein distance between N(mu1, S1) and N(mu2, S2). Everything here is
 * float64 on the host. The trace of the square root uses only symmetric positive semi-definite
 * matrices:
 *
 *   tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2)) = sum_i sqrt(lambda_i(S1^(1/2) S2 S1^(1/2)))
 *
 * (S1 S2 is similar to S1^(1/2) S2 S1^(1/2), so both have the same non-negative eigenvalues),
 * and the eigenvalues of symmetric matrices come from cyclic Jacobi rotations, which converge for
 * every symmetric matrix and give eigenvalues accurate to a few ulps of the matrix's norm. No
 * non-symmetric square root (scipy's sqrtm, which pytorch-fid calls and which can return
 * complex parts from rounding) is needed.
 *
 * Matrices are row-major Float64Array of n x n.
 */

/** Eigenvalues and eigenvectors of a symmetric matrix: A = V diag(values) V^T. */
export interface SymmetricEigen {
  /** Eigenvalues, in the order of V's columns (not sorted). Shape: [n]. */
  values: Float64Array;
  /** Orthonormal eigenvectors as columns, row-major. Shape: [n, n]. */
  vectors: Float64Array;
}

/** Sweeps of `symmetricEigen` before it gives up (a few are enough for n = 128; 10-12 is typical). */
const MAX_SWEEPS = 100;

/**
 * Eigen-decomposition of the symmetric n x n matrix `a` (only read; its upper and lower halves
 * should agree; the mean of the two is used) by cyclic Jacobi rotations (Golub & Van Loan,
 * Matrix Computations, 4th ed., Algorithm 8.5.3, with the rotation of Numerical Recipes' `jacobi`).
 * Stops when the off-diagonal mass is below 1e-30 of the matrix's squared Frobenius norm
 * (float64 rounding level), or after MAX_SWEEPS sweeps.
 */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: a must hold n x n = ${n * n} values; got ${a.length}`);
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += A[i] * A[i];
  const tol = total * 1e-30;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += 2 * A[p * n + q] * A[p * n + q];
    if (off <= tol || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (apq === 0) continue;
        const app = A[p * n + p];
        const aqq = A[q * n + q];
        // t = tan of the rotation angle, the smaller root of t^2 + 2 theta t - 1 = 0 (|angle| <= pi/4):
        // the choice that keeps the rotation close to the identity, hence stable.
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        const tau = s / (1 + c);
        A[p * n + p] = app - t * apq;
        A[q * n + q] = aqq + t * apq;
        A[p * n + q] = 0;
        A[q * n + p] = 0;
        for (let r = 0; r < n; r++) {
          if (r === p || r === q) continue;
          const g = A[r * n + p];
          const h = A[r * n + q];
          const rp = g - s * (h + g * tau);
          const rq = h + s * (g - h * tau);
          A[r * n + p] = rp;
          A[p * n + r] = rp;
          A[r * n + q] = rq;
          A[q * n + r] = rq;
        }
        for (let r = 0; r < n; r++) {
          const g = V[r * n + p];
          const h = V[r * n + q];
          V[r * n + p] = g - s * (h + g * tau);
          V[r * n + q] = h + s * (g - h * tau);
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = A[i * n + i];
  return { values, vectors: V };
}

/**
 * The symmetric square root of a symmetric positive semi-definite matrix: V diag(sqrt(lambda)) V^T,
 * with eigenvalues below 0 (rounding, or a matrix that is not quite PSD) taken as 0.
 * Shapes: a [n, n] -> [n, n].
 */
export function sqrtPsd(a: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(a, n);
  const root = Float64Array.from(values, (v) => Math.sqrt(Math.max(0, v)));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += V[i * n + k] * root[k] * V[j * n + k];
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/** C = A B for n x n matrices. */
function matMul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
    }
  }
  return c;
}

/** Mean and covariance of a set of vectors. */
export interface GaussianMoments {
  /** Shape: [d]. */
  mean: Float64Array;
  /** Sample covariance with the n - 1 denominator (numpy's np.cov, as pytorch-fid uses). Shape: [d, d]. */
  cov: Float64Array;
  /** Vectors the moments were computed from. */
  n: number;
  d: number;
}

/**
 * Mean and sample covariance (denominator n - 1) of n row vectors of length d, in float64 with
 * two passes (centred sums, not sum of squares minus squared mean, which loses digits). Rows
 * listed in `rows` only, when given. Shapes: x [n, d] row-major.
 */
export function gaussianMoments(x: ArrayLike<number>, d: number, rows?: ArrayLike<number>): GaussianMoments {
  const all = x.length / d;
  if (!Number.isInteger(all)) throw new RangeError(`gaussianMoments: x holds ${x.length} values, not a multiple of d = ${d}`);
  const n = rows ? rows.length : all;
  if (n < 2) throw new RangeError(`gaussianMoments: a covariance needs at least 2 vectors; got ${n}`);
  const row = (i: number) => (rows ? rows[i] : i);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = row(i) * d;
    for (let j = 0; j < d; j++) mean[j] += x[o + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = row(i) * d;
    for (let j = 0; j < d; j++) c[j] = x[o + j] - mean[j];
    for (let j = 0; j < d; j++) {
      const cj = c[j];
      if (cj === 0) continue;
      for (let k = j; k < d; k++) cov[j * d + k] += cj * c[k];
    }
  }
  for (let j = 0; j < d; j++) {
    for (let k = j; k < d; k++) {
      const v = cov[j * d + k] / (n - 1);
      cov[j * d + k] = v;
      cov[k * d + j] = v;
    }
  }
  return { mean, cov, n, d };
}

/**
 * tr((S1 S2)^(1/2)) for symmetric PSD S1, S2, as the sum of the square roots of the eigenvalues
 * of S1^(1/2) S2 S1^(1/2) (negative rounding residues taken as 0).
 */
export function traceSqrtProduct(s1: ArrayLike<number>, s2: ArrayLike<number>, n: number): number {
  const r = sqrtPsd(s1, n);
  const m = matMul(matMul(r, Float64Array.from(s2), n), r, n);
  const { values } = symmetricEigen(m, n);
  let tr = 0;
  for (const v of values) tr += Math.sqrt(Math.max(0, v));
  return tr;
}

/**
 * The Fréchet distance between N(mu1, S1) and N(mu2, S2):
 * ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)). Mathematically >= 0 and symmetric in
 * its arguments; in floating point it can come out a rounding residue below 0 (about 1e-12 of
 * tr(S1) for equal Gaussians), which is returned as it is.
 */
export function frechetDistance(a: Pick<GaussianMoments, 'mean' | 'cov'>, b: Pick<GaussianMoments, 'mean' | 'cov'>): number {
  const d = a.mean.length;
  if (b.mean.length !== d || a.cov.length !== d * d || b.cov.length !== d * d) {
    throw new RangeError(`frechetDistance: both Gaussians must have the dimension of the first (${d}); got means of ${a.mean.length} and ${b.mean.length}, covariances of ${a.cov.length} and ${b.cov.length} values`);
  }
  let diff = 0;
  for (let j = 0; j < d; j++) diff += (a.mean[j] - b.mean[j]) ** 2;
  let tr = 0;
  for (let j = 0; j < d; j++) tr += a.cov[j * d + j] + b.cov[j * d + j];
  return diff + tr - 2 * traceSqrtProduct(a.cov, b.cov, d);
}
