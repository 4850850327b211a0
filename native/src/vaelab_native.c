/*
 * vaelab_native: the hot training kernels of vaelab on OpenBLAS, as a plain N-API (node_api.h)
 * addon. Every entry point works on Float32Arrays and writes its results into arrays the caller
 * allocated, so that the wasm backend can hand in zero-copy views of its heap: nothing here
 * allocates JavaScript memory, and nothing calls back into JavaScript while a view is in use.
 *
 * Layouts are row-major, images are NHWC and filters are [kh, kw, Cin, Cout] (TensorFlow's).
 * Convolutions whose channels suit a 16-float register (output channels a multiple of 16 for the
 * forward pass and the filter gradient, input channels for the input gradient) run as direct
 * convolutions on one thread: register-tiled loops over a zero-padded copy of the input, with
 * fused multiply-adds, built for AVX-512, AVX2 and the baseline and picked by CPU features.
 * Others (and all of them with several BLAS threads) are im2col + sgemm (forward, filter
 * gradient) and sgemm + col2im (input gradient), processed in chunks of output pixels so that
 * the patch matrix stays small enough to be cache-friendly; the scratch buffer is owned by the
 * addon and reused across calls. Thin products
 * (two dimensions <= 64, as in a conv layer with one input channel) skip BLAS for vector loops
 * that are 3-5x faster there. Also: bias + activation, column sums (bias gradients), a fused
 * Adam step, the Bernoulli log-density on logits and the KL to a standard normal with their
 * gradients, the Gaussian reparameterisation (sample, gradient, log-density), bias + relu and its
 * gradient, the relu gradient, leaky relu and its gradient, batch normalisation over rows with its
 * gradient, and sums of squares.
 *
 * Every argument is checked (types, sizes, array lengths) before any memory is touched, because
 * an out-of-bounds write here would silently corrupt the wasm heap. Errors name the function and
 * the argument, what was expected and what was received.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>
#include <cblas.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

/* ---------------------------------------------------------------- errors and arguments */

#define MAX_ARGS 20
#define MSG_LEN 512

/* Throws a TypeError (or a RangeError when `range`) unless one is already pending; returns NULL. */
static napi_value throw_msg(napi_env env, int range, const char *msg) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    if (range) napi_throw_range_error(env, NULL, msg);
    else napi_throw_type_error(env, NULL, msg);
  }
  return NULL;
}

typedef struct {
  napi_env env;
  const char *fn;
  size_t argc;
  napi_value argv[MAX_ARGS];
  int failed;
} Args;

static int args_init(Args *a, napi_env env, napi_callback_info info, const char *fn, size_t want) {
  a->env = env;
  a->fn = fn;
  a->argc = MAX_ARGS;
  a->failed = 0;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) {
    throw_msg(env, 0, "vaelab_native: cannot read the call's arguments");
    return 0;
  }
  if (a->argc < want) {
    char msg[MSG_LEN];
    snprintf(msg, sizeof msg, "vaelab_native.%s: expected %zu arguments; got %zu", fn, want, a->argc);
    throw_msg(env, 0, msg);
    return 0;
  }
  return 1;
}

static void args_error(Args *a, int range, const char *what, const char *detail) {
  char msg[MSG_LEN];
  if (a->failed) return;
  a->failed = 1;
  snprintf(msg, sizeof msg, "vaelab_native.%s: %s %s", a->fn, what, detail);
  throw_msg(a->env, range, msg);
}

/* A Float32Array argument (a view: any ArrayBuffer, any byte offset). */
static float *arg_f32(Args *a, size_t i, const char *name, size_t *len) {
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  bool is_ta = false;
  char detail[128];
  *len = 0;
  if (a->failed) return NULL;
  napi_is_typedarray(a->env, a->argv[i], &is_ta);
  if (!is_ta || napi_get_typedarray_info(a->env, a->argv[i], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float32_array) {
    args_error(a, 0, name, "must be a Float32Array");
    return NULL;
  }
  if (length > 0 && data == NULL) {
    snprintf(detail, sizeof detail, "must be an attached Float32Array; got a detached one of length %zu", length);
    args_error(a, 0, name, detail);
    return NULL;
  }
  *len = length;
  return (float *)data;
}

/* A Float32Array argument or null/undefined (then NULL with *len = 0). */
static float *arg_f32_opt(Args *a, size_t i, const char *name, size_t *len) {
  napi_valuetype t;
  *len = 0;
  if (a->failed) return NULL;
  if (i >= a->argc) return NULL;
  napi_typeof(a->env, a->argv[i], &t);
  if (t == napi_null || t == napi_undefined) return NULL;
  return arg_f32(a, i, name, len);
}

static double num_of(Args *a, napi_value v, const char *name) {
  double x = 0;
  napi_valuetype t;
  if (a->failed) return 0;
  napi_typeof(a->env, v, &t);
  if (t != napi_number || napi_get_value_double(a->env, v, &x) != napi_ok) {
    args_error(a, 0, name, "must be a number");
    return 0;
  }
  return x;
}

static double arg_num(Args *a, size_t i, const char *name) {
  return num_of(a, a->argv[i], name);
}

/* A whole number in [lo, 2^31). */
static long int_of(Args *a, napi_value v, const char *name, long lo) {
  char detail[128];
  double x = num_of(a, v, name);
  if (a->failed) return 0;
  if (x != floor(x) || x < (double)lo || x > 2147483647.0) {
    snprintf(detail, sizeof detail, "must be a whole number >= %ld; got %g", lo, x);
    args_error(a, 1, name, detail);
    return 0;
  }
  return (long)x;
}

static long arg_int(Args *a, size_t i, const char *name, long lo) {
  return int_of(a, a->argv[i], name, lo);
}

static int arg_bool(Args *a, size_t i, const char *name) {
  bool b = false;
  napi_valuetype t;
  if (a->failed) return 0;
  napi_typeof(a->env, a->argv[i], &t);
  if (t != napi_boolean || napi_get_value_bool(a->env, a->argv[i], &b) != napi_ok) {
    args_error(a, 0, name, "must be a boolean");
    return 0;
  }
  return b ? 1 : 0;
}

/* Checks that `name` holds at least `need` floats. */
static void need_len(Args *a, const char *name, size_t len, size_t need) {
  char detail[160];
  if (a->failed || len >= need) return;
  snprintf(detail, sizeof detail, "must hold at least %zu floats for the given sizes; got %zu", need, len);
  args_error(a, 1, name, detail);
}

/* Checks that `name` holds exactly `need` floats. */
static void exact_len(Args *a, const char *name, size_t len, size_t need) {
  char detail[160];
  if (a->failed || len == need) return;
  snprintf(detail, sizeof detail, "must hold exactly %zu floats for the given shapes; got %zu", need, len);
  args_error(a, 1, name, detail);
}

/* Floats a row-major matrix with `rows` rows of `cols` used entries and leading dimension `ld` spans. */
static size_t span(size_t rows, size_t cols, size_t ld) {
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

static napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* ---------------------------------------------------------------- sgemm */

typedef struct {
  int ta, tb;
  long m, n, k;
  float alpha, beta;
  long lda, ldb, ldc;
} Gemm;

/* Reads and checks transA, transB, M, N, K, alpha: arguments 0 to 5 of sgemm and sgemmBatched. */
static void read_gemm_head(Args *a, Gemm *g) {
  g->ta = arg_bool(a, 0, "transA");
  g->tb = arg_bool(a, 1, "transB");
  g->m = arg_int(a, 2, "M", 0);
  g->n = arg_int(a, 3, "N", 0);
  g->k = arg_int(a, 4, "K", 0);
  g->alpha = (float)arg_num(a, 5, "alpha");
}

static void check_ld(Args *a, const char *name, long ld, long cols) {
  char detail[128];
  if (a->failed) return;
  if (ld < (cols > 1 ? cols : 1)) {
    snprintf(detail, sizeof detail, "must be >= max(1, %ld) (the row length); got %ld", cols, ld);
    args_error(a, 1, name, detail);
  }
}

/*
 * Thin products, where one dimension is large and the other two are tiny (a first conv layer
 * with one input channel: patch 16 x 32 channels): OpenBLAS packs both operands and runs its
 * kernel with a short inner loop, reaching ~10 GFLOP/s here, while a plain loop over the large
 * dimension that keeps the tiny matrix in L1 is memory-bound and 3-5x faster. The loops below
 * are written so that the innermost one runs over contiguous floats of C, which GCC vectorises;
 * on x86-64 Linux they are also compiled for AVX2 and AVX-512 and picked at load time.
 */
#define THIN_MAX 64 /* both small dimensions at most this */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/*
 * Rows of C whose width is a multiple of 16 use GCC/Clang vector types (16 floats: one AVX-512
 * register, two AVX2 or four SSE registers), so that the accumulators stay in registers and
 * the compiler cannot pick a worse loop to vectorise (GCC 12 vectorises the K loop when the
 * width is 16, at 1/10 of the speed). Other widths take a plain loop.
 */
typedef float f32x16 __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) f32x16 load16(const float *p) {
  f32x16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline __attribute__((always_inline)) void store16(float *p, f32x16 v) { memcpy(p, &v, sizeof v); }

/*
 * x in every lane: one vbroadcastss (x - 0 is x for every x, -0 included, so GCC drops the
 * subtraction; `0 + x` would be kept, since it turns -0 into +0). A macro, not a function: a
 * helper compiled for the baseline ISA gets its vector code split into lanes before it is inlined
 * into an AVX-512 kernel.
 */
#define SPLAT16(x) ((x) - (f32x16){0})

/*
 * C rows = alpha * (A rows · B) + beta * C rows, B dense [K, NV], R rows at a time so that
 * R * NV / 16 independent sums are in flight (one row of 16 columns alone waits on the latency
 * of every addition).
 */
#define THIN_NN_ROWS(R, NV)                                                         \
  for (; r + (R) <= m; r += (R)) {                                                  \
    f32x16 acc[R][(NV) / 16];                                                       \
    for (int i = 0; i < (R); i++)                                                   \
      for (int u = 0; u < (NV) / 16; u++) acc[i][u] = (f32x16){0};                  \
    for (long q = 0; q < k; q++) {                                                  \
      const float *b = B + q * (NV);                                                \
      f32x16 bv[(NV) / 16];                                                         \
      for (int u = 0; u < (NV) / 16; u++) bv[u] = load16(b + 16 * u);               \
      for (int i = 0; i < (R); i++) {                                               \
        const f32x16 av = SPLAT16(A[(r + i) * lda + q]);                            \
        for (int u = 0; u < (NV) / 16; u++) acc[i][u] += av * bv[u];                \
      }                                                                             \
    }                                                                               \
    for (int i = 0; i < (R); i++) {                                                 \
      float *c = C + (r + i) * ldc;                                                 \
      for (int u = 0; u < (NV) / 16; u++) {                                         \
        f32x16 out = acc[i][u] * alpha;                                             \
        if (beta != 0.0f) out += load16(c + 16 * u) * beta;                         \
        store16(c + 16 * u, out);                                                   \
      }                                                                             \
    }                                                                               \
  }

#define THIN_NN_VEC(NV, R)                                                          \
  {                                                                                 \
    long r = 0;                                                                     \
    THIN_NN_ROWS(R, NV)                                                             \
    THIN_NN_ROWS(1, NV)                                                             \
  }

/* tile[M, NV] += A[K, M]ᵀ · B[K, NV] */
#define THIN_TN_VEC(NV)                                                             \
  for (long q = 0; q < k; q++) {                                                    \
    const float *a = A + q * lda;                                                   \
    f32x16 bv[(NV) / 16];                                                           \
    for (int u = 0; u < (NV) / 16; u++) bv[u] = load16(B + q * ldb + 16 * u);       \
    for (long i = 0; i < m; i++) {                                                  \
      const f32x16 av = SPLAT16(a[i]);                                                  \
      float *t = tile + i * (NV);                                                   \
      for (int u = 0; u < (NV) / 16; u++) store16(t + 16 * u, load16(t + 16 * u) + av * bv[u]); \
    }                                                                               \
  }

/* C[M,N] = alpha A[M,K] B[K,N] + beta C with B (K*N <= THIN_MAX^2 floats) given as a dense [K,N] copy. */
VECTOR_CLONES
static void thin_nn(long m, long n, long k, float alpha, const float *A, long lda, const float *B, float beta, float *C, long ldc) {
  switch (n) {
    case 16: THIN_NN_VEC(16, 8) return;
    case 32: THIN_NN_VEC(32, 4) return;
    case 48: THIN_NN_VEC(48, 3) return;
    case 64: THIN_NN_VEC(64, 2) return;
    default: break;
  }
  float acc[THIN_MAX];
  for (long r = 0; r < m; r++) {
    const float *a = A + r * lda;
    float *c = C + r * ldc;
    for (long j = 0; j < n; j++) acc[j] = 0.0f;
    for (long q = 0; q < k; q++) {
      const float av = a[q];
      const float *b = B + q * n;
      for (long j = 0; j < n; j++) acc[j] += av * b[j];
    }
    for (long j = 0; j < n; j++) c[j] = beta == 0.0f ? alpha * acc[j] : alpha * acc[j] + beta * c[j];
  }
}

/* C[M,N] = alpha A[K,M]ᵀ B[K,N] + beta C for M, N <= THIN_MAX and any K: outer products summed into a tile in L1. */
VECTOR_CLONES
static void thin_tn(long m, long n, long k, float alpha, const float *A, long lda, const float *B, long ldb, float beta, float *C,
                    long ldc) {
  float tile[THIN_MAX * THIN_MAX];
  for (long i = 0; i < m * n; i++) tile[i] = 0.0f;
  switch (n) {
    case 16: THIN_TN_VEC(16) break;
    case 32: THIN_TN_VEC(32) break;
    case 48: THIN_TN_VEC(48) break;
    case 64: THIN_TN_VEC(64) break;
    default:
      for (long q = 0; q < k; q++) {
        const float *a = A + q * lda;
        const float *b = B + q * ldb;
        for (long i = 0; i < m; i++) {
          const float av = a[i];
          float *t = tile + i * n;
          for (long j = 0; j < n; j++) t[j] += av * b[j];
        }
      }
  }
  for (long i = 0; i < m; i++) {
    float *c = C + i * ldc;
    const float *t = tile + i * n;
    for (long j = 0; j < n; j++) c[j] = beta == 0.0f ? alpha * t[j] : alpha * t[j] + beta * c[j];
  }
}

/* Runs the product with the thin loops when its shape suits them; returns 0 to leave it to BLAS. */
static int thin_gemm(const Gemm *g, const float *A, const float *B, float *C) {
  if (!g->ta && g->k <= THIN_MAX && g->n <= THIN_MAX && g->m >= 4 * THIN_MAX) {
    float packed[THIN_MAX * THIN_MAX];
    /* op(B) as a dense [K, N] block: the innermost loop then reads it contiguously. */
    for (long q = 0; q < g->k; q++) {
      for (long j = 0; j < g->n; j++) packed[q * g->n + j] = g->tb ? B[j * g->ldb + q] : B[q * g->ldb + j];
    }
    thin_nn(g->m, g->n, g->k, g->alpha, A, g->lda, packed, g->beta, C, g->ldc);
    return 1;
  }
  if (g->ta && !g->tb && g->m <= THIN_MAX && g->n <= THIN_MAX && g->k >= 4 * THIN_MAX) {
    thin_tn(g->m, g->n, g->k, g->alpha, A, g->lda, B, g->ldb, g->beta, C, g->ldc);
    return 1;
  }
  return 0;
}

static void run_gemm(const Gemm *g, const float *A, const float *B, float *C) {
  if (g->m == 0 || g->n == 0) return;
  if (g->k > 0 && thin_gemm(g, A, B, C)) return;
  if (g->k == 0) {
    /* BLAS with K = 0 only scales C; spelt out so that beta = 0 clears NaNs as the spec says. */
    for (long r = 0; r < g->m; r++) {
      float *row = C + r * g->ldc;
      for (long c = 0; c < g->n; c++) row[c] = g->beta == 0.0f ? 0.0f : g->beta * row[c];
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n,
              (int)g->k, g->alpha, A, (int)g->lda, B, (int)g->ldb, g->beta, C, (int)g->ldc);
}

/* One row-major product through the thin loops or BLAS: C = alpha op(A) op(B) + beta C. */
static void gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                 float beta, float *C, size_t ldc) {
  Gemm g = {ta, tb, (long)m, (long)n, (long)k, alpha, beta, (long)lda, (long)ldb, (long)ldc};
  run_gemm(&g, A, B, C);
}

/* sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc): C = alpha op(A) op(B) + beta C. */
static napi_value js_sgemm(napi_env env, napi_callback_info info) {
  Args a;
  Gemm g;
  size_t la, lb, lc;
  if (!args_init(&a, env, info, "sgemm", 13)) return NULL;
  read_gemm_head(&a, &g);
  float *A = arg_f32(&a, 6, "A", &la);
  g.lda = arg_int(&a, 7, "lda", 1);
  float *B = arg_f32(&a, 8, "B", &lb);
  g.ldb = arg_int(&a, 9, "ldb", 1);
  g.beta = (float)arg_num(&a, 10, "beta");
  float *C = arg_f32(&a, 11, "C", &lc);
  g.ldc = arg_int(&a, 12, "ldc", 1);
  check_ld(&a, "lda", g.lda, g.ta ? g.m : g.k);
  check_ld(&a, "ldb", g.ldb, g.tb ? g.k : g.n);
  check_ld(&a, "ldc", g.ldc, g.n);
  need_len(&a, "A", la, g.ta ? span(g.k, g.m, g.lda) : span(g.m, g.k, g.lda));
  need_len(&a, "B", lb, g.tb ? span(g.n, g.k, g.ldb) : span(g.k, g.n, g.ldb));
  need_len(&a, "C", lc, span(g.m, g.n, g.ldc));
  if (a.failed) return NULL;
  run_gemm(&g, A, B, C);
  return undefined_value(env);
}

/*
 * sgemmBatched(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch):
 * for i < batch, C[i*strideC..] = alpha op(A[i*strideA..]) op(B[i*strideB..]) + beta C[i*strideC..].
 * A stride of 0 broadcasts that operand over the batch.
 */
static napi_value js_sgemm_batched(napi_env env, napi_callback_info info) {
  Args a;
  Gemm g;
  size_t la, lb, lc;
  if (!args_init(&a, env, info, "sgemmBatched", 17)) return NULL;
  read_gemm_head(&a, &g);
  float *A = arg_f32(&a, 6, "A", &la);
  g.lda = arg_int(&a, 7, "lda", 1);
  long sa = arg_int(&a, 8, "strideA", 0);
  float *B = arg_f32(&a, 9, "B", &lb);
  g.ldb = arg_int(&a, 10, "ldb", 1);
  long sb = arg_int(&a, 11, "strideB", 0);
  g.beta = (float)arg_num(&a, 12, "beta");
  float *C = arg_f32(&a, 13, "C", &lc);
  g.ldc = arg_int(&a, 14, "ldc", 1);
  long sc = arg_int(&a, 15, "strideC", 0);
  long batch = arg_int(&a, 16, "batch", 0);
  check_ld(&a, "lda", g.lda, g.ta ? g.m : g.k);
  check_ld(&a, "ldb", g.ldb, g.tb ? g.k : g.n);
  check_ld(&a, "ldc", g.ldc, g.n);
  if (batch > 0) {
    size_t last = (size_t)(batch - 1);
    need_len(&a, "A", la, last * (size_t)sa + (g.ta ? span(g.k, g.m, g.lda) : span(g.m, g.k, g.lda)));
    need_len(&a, "B", lb, last * (size_t)sb + (g.tb ? span(g.n, g.k, g.ldb) : span(g.k, g.n, g.ldb)));
    need_len(&a, "C", lc, last * (size_t)sc + span(g.m, g.n, g.ldc));
    if (!a.failed && batch > 1 && (size_t)sc < span(g.m, g.n, g.ldc)) {
      char detail[128];
      snprintf(detail, sizeof detail, "must be >= %zu so that outputs do not overlap; got %ld", span(g.m, g.n, g.ldc), sc);
      args_error(&a, 1, "strideC", detail);
    }
  }
  if (a.failed) return NULL;
  for (long i = 0; i < batch; i++) run_gemm(&g, A + i * sa, B + i * sb, C + i * sc);
  return undefined_value(env);
}

/* ---------------------------------------------------------------- exp and log1p */

/*
 * exp and log1p written out so that the element loops vectorise (libm's expf/log1pf are scalar
 * calls: 28 ns per pixel) and give the same bits on every machine and libc. Cephes' float
 * polynomials: exp_neg is within 1 ulp of exp on [-87.3, 0] and 0 below (flush to zero);
 * log1p_unit is within 2 ulp of log1p on [0, 1], with the rounding error of 1 + e carried
 * (log1p(e) = log(u) + (e - (u - 1)) / u, u = fl(1 + e)) so that tiny e keep full precision.
 * Both inline into the VECTOR_CLONES loops below (branch-free: selects only).
 */
static inline float exp_neg(float x) {
  const float lo = -87.3f;
  const float xc = x < lo ? lo : x;
  /* round to nearest with the 1.5 * 2^23 trick (vectorises everywhere; |xc log2 e| < 2^22) */
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  union { int32_t i; float f; } scale;
  scale.i = ((int32_t)n + 127) << 23;
  return x < lo ? 0.0f : p * scale.f;
}

static inline float log1p_unit(float e) {
  const float u = 1.0f + e;
  const float carry = (e - (u - 1.0f)) / u;
  const int big = u > 1.41421356237f;
  const float m = big ? u * 0.5f : u;
  const float x = m - 1.0f;
  const float y = x * x;
  float p = 7.0376836292e-2f;
  p = p * x - 1.1514610310e-1f;
  p = p * x + 1.1676998740e-1f;
  p = p * x - 1.2420140846e-1f;
  p = p * x + 1.4249322787e-1f;
  p = p * x - 1.6668057665e-1f;
  p = p * x + 2.0000714765e-1f;
  p = p * x - 2.4999993993e-1f;
  p = p * x + 3.3333331174e-1f;
  float z = x * y * p;
  const float k = big ? 1.0f : 0.0f;
  z += k * -2.12194440e-4f;
  z += -0.5f * y;
  return (x + z) + k * 0.693359375f + carry;
}

/* ---------------------------------------------------------------- bias + activation */

enum { ACT_LINEAR, ACT_RELU, ACT_RELU6, ACT_LEAKYRELU, ACT_ELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTPLUS };

/*
 * tanh(v) without libm (branch-free, so that the loops vectorise, and the same bits everywhere):
 * the odd Taylor series to v^11 for |v| < 1/4 (truncation below 1e-9 relative), else
 * sign(v) (1 - e) / (1 + e) with e = exp(-2|v|), within a few ulp; exactly +-1 once e
 * underflows.
 */
static inline float tanh_f(float v) {
  const float a = v < 0.0f ? -v : v;
  const float e = exp_neg(-2.0f * a);
  const float big = (1.0f - e) / (1.0f + e);
  const float y = a * a;
  float p = -8.8632355e-3f;    /* -1382/155925 */
  p = p * y + 2.1869488e-2f;  /* 62/2835 */
  p = p * y - 5.3968254e-2f;  /* -17/315 */
  p = p * y + 1.3333334e-1f;  /* 2/15 */
  p = p * y - 3.3333334e-1f;  /* -1/3 */
  const float small = a + a * y * p;
  const float t = a < 0.25f ? small : big;
  return v < 0.0f ? -t : t;
}

/* softplus(v) = max(v, 0) + log1p(exp(-|v|)), as bernoulli_terms computes it. */
static inline float softplus_f(float v) {
  const float a = v < 0.0f ? -v : v;
  return (v > 0.0f ? v : 0.0f) + log1p_unit(exp_neg(-a));
}

VECTOR_CLONES
static void tanh_loop(float *restrict y, size_t n) {
  for (size_t c = 0; c < n; c++) y[c] = tanh_f(y[c]);
}

VECTOR_CLONES
static void softplus_loop(float *restrict y, size_t n) {
  for (size_t c = 0; c < n; c++) y[c] = softplus_f(y[c]);
}

/*
 * biasActivation(y, n, bias, activation, alpha): y viewed as [rows, n]; y = act(y + bias) with
 * bias: [n] or null, activation one of "linear", "relu", "relu6", "leakyrelu" (slope alpha),
 * "elu", "sigmoid" (tfjs's definitions), "tanh", "softplus" (tanh_f, softplus_f above).
 */
static napi_value js_bias_activation(napi_env env, napi_callback_info info) {
  Args a;
  size_t ly, lb;
  char act[16] = {0};
  size_t act_len = 0;
  int code = -1;
  if (!args_init(&a, env, info, "biasActivation", 5)) return NULL;
  float *y = arg_f32(&a, 0, "y", &ly);
  long n = arg_int(&a, 1, "n", 1);
  float *bias = arg_f32_opt(&a, 2, "bias", &lb);
  if (!a.failed && napi_get_value_string_utf8(env, a.argv[3], act, sizeof act, &act_len) != napi_ok) {
    args_error(&a, 0, "activation", "must be a string");
  }
  float alpha = (float)arg_num(&a, 4, "alpha");
  if (a.failed) return NULL;
  if (strcmp(act, "linear") == 0) code = ACT_LINEAR;
  else if (strcmp(act, "relu") == 0) code = ACT_RELU;
  else if (strcmp(act, "relu6") == 0) code = ACT_RELU6;
  else if (strcmp(act, "leakyrelu") == 0) code = ACT_LEAKYRELU;
  else if (strcmp(act, "elu") == 0) code = ACT_ELU;
  else if (strcmp(act, "sigmoid") == 0) code = ACT_SIGMOID;
  else if (strcmp(act, "tanh") == 0) code = ACT_TANH;
  else if (strcmp(act, "softplus") == 0) code = ACT_SOFTPLUS;
  if (code < 0) {
    char detail[160];
    snprintf(detail, sizeof detail, "must be \"linear\", \"relu\", \"relu6\", \"leakyrelu\", \"elu\", \"sigmoid\", \"tanh\" or \"softplus\"; got \"%s\"", act);
    args_error(&a, 1, "activation", detail);
    return NULL;
  }
  if (ly % (size_t)n != 0) {
    char detail[128];
    snprintf(detail, sizeof detail, "length must be a multiple of n = %ld; got %zu", n, ly);
    args_error(&a, 1, "y", detail);
    return NULL;
  }
  if (bias != NULL) exact_len(&a, "bias", lb, (size_t)n);
  if (a.failed) return NULL;
  size_t rows = ly / (size_t)n;
  for (size_t r = 0; r < rows; r++) {
    float *row = y + r * (size_t)n;
    if (bias != NULL) {
      for (long c = 0; c < n; c++) row[c] += bias[c];
    }
    switch (code) {
      case ACT_RELU:
        for (long c = 0; c < n; c++) row[c] = row[c] < 0.0f ? 0.0f : row[c];
        break;
      case ACT_RELU6:
        for (long c = 0; c < n; c++) row[c] = row[c] < 0.0f ? 0.0f : (row[c] > 6.0f ? 6.0f : row[c]);
        break;
      case ACT_LEAKYRELU:
        for (long c = 0; c < n; c++) row[c] = row[c] < 0.0f ? alpha * row[c] : row[c];
        break;
      case ACT_ELU:
        for (long c = 0; c < n; c++) row[c] = row[c] >= 0.0f ? row[c] : expm1f(row[c]);
        break;
      case ACT_SIGMOID:
        for (long c = 0; c < n; c++) row[c] = 1.0f / (1.0f + expf(-row[c]));
        break;
      case ACT_TANH:
        tanh_loop(row, (size_t)n);
        break;
      case ACT_SOFTPLUS:
        softplus_loop(row, (size_t)n);
        break;
      default:
        break;
    }
  }
  return undefined_value(env);
}

/* ---------------------------------------------------------------- convolution */

/* The geometry of one 2-D convolution (the fields of tfjs's Conv2DInfo that matter here). */
typedef struct {
  long batch, h, w, cin, ho, wo, cout, kh, kw, sh, sw, dh, dw, top, left;
} Conv;

static long prop_int(Args *a, napi_value obj, const char *key, long lo) {
  napi_value v;
  char name[64];
  if (a->failed) return 0;
  snprintf(name, sizeof name, "info.%s", key);
  if (napi_get_named_property(a->env, obj, key, &v) != napi_ok) {
    args_error(a, 0, name, "cannot be read");
    return 0;
  }
  return int_of(a, v, name, lo);
}

/* Reads a tfjs Conv2DInfo-shaped object (batchSize, inHeight, ..., padInfo.top/left). */
static void read_conv(Args *a, size_t i, Conv *c) {
  napi_valuetype t;
  napi_value pad;
  if (a->failed) return;
  napi_typeof(a->env, a->argv[i], &t);
  if (t != napi_object) {
    args_error(a, 0, "info", "must be a Conv2DInfo object (backend_util.computeConv2DInfo)");
    return;
  }
  c->batch = prop_int(a, a->argv[i], "batchSize", 0);
  c->h = prop_int(a, a->argv[i], "inHeight", 1);
  c->w = prop_int(a, a->argv[i], "inWidth", 1);
  c->cin = prop_int(a, a->argv[i], "inChannels", 1);
  c->ho = prop_int(a, a->argv[i], "outHeight", 0);
  c->wo = prop_int(a, a->argv[i], "outWidth", 0);
  c->cout = prop_int(a, a->argv[i], "outChannels", 1);
  c->kh = prop_int(a, a->argv[i], "filterHeight", 1);
  c->kw = prop_int(a, a->argv[i], "filterWidth", 1);
  c->sh = prop_int(a, a->argv[i], "strideHeight", 1);
  c->sw = prop_int(a, a->argv[i], "strideWidth", 1);
  c->dh = prop_int(a, a->argv[i], "dilationHeight", 1);
  c->dw = prop_int(a, a->argv[i], "dilationWidth", 1);
  if (a->failed) return;
  if (napi_get_named_property(a->env, a->argv[i], "padInfo", &pad) != napi_ok ||
      napi_typeof(a->env, pad, &t) != napi_ok || t != napi_object) {
    args_error(a, 0, "info.padInfo", "must be an object with top and left");
    return;
  }
  c->top = prop_int(a, pad, "top", 0);
  c->left = prop_int(a, pad, "left", 0);
}

/* Floats of the patch matrix per chunk: a tuning knob (VAELAB_CONV_CHUNK), default 256 Ki floats (1 MB). */
static size_t chunk_floats = 256 * 1024;

/* Per-environment state (each worker thread that loads the addon gets its own scratch buffer). */
typedef struct {
  float *scratch;
  size_t cap;
} Instance;

/* The scratch buffer: realloc's own pointer, so aligned for any type (the batch-norm kernels keep doubles in it). */
static float *scratch_get(Args *a, size_t floats) {
  Instance *inst = NULL;
  if (napi_get_instance_data(a->env, (void **)&inst) != napi_ok || inst == NULL) {
    args_error(a, 1, "its scratch buffer", "is missing: the addon has no per-environment state (it was not initialised)");
    return NULL;
  }
  if (floats <= inst->cap) return inst->scratch;
  float *p = (float *)realloc(inst->scratch, floats * sizeof(float));
  if (p == NULL) {
    char detail[128];
    snprintf(detail, sizeof detail, "of %zu floats could not be allocated (malloc failed)", floats);
    args_error(a, 1, "its scratch buffer", detail);
    return NULL;
  }
  inst->scratch = p;
  inst->cap = floats;
  return p;
}

/* Output pixels per chunk: at least one, at most all. */
static size_t chunk_rows(const Conv *c) {
  size_t patch = (size_t)(c->kh * c->kw * c->cin);
  size_t rows = (size_t)c->batch * (size_t)c->ho * (size_t)c->wo;
  size_t r = chunk_floats / (patch > 0 ? patch : 1);
  if (r < 1) r = 1;
  return r < rows ? r : rows;
}

/* Whether the patch matrix is the input itself (1x1 filter, stride 1, no padding). */
static int is_pointwise(const Conv *c) {
  return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->top == 0 && c->left == 0 && c->ho == c->h &&
         c->wo == c->w;
}

/*
 * cols[r, (i, j, ch)] = x[b, p*sh - top + i*dh, q*sw - left + j*dw, ch] for output pixels
 * r = row0 .. row0+nrows-1 with r = (b*Ho + p)*Wo + q; zero where the window leaves the image.
 * Without dilation, a window row that lies inside the image is kw*Cin contiguous floats of x
 * (NHWC), copied at once.
 */
static void im2col(const Conv *c, const float *x, float *cols, size_t row0, size_t nrows) {
  const size_t cin = (size_t)c->cin;
  const size_t hw = (size_t)c->ho * (size_t)c->wo;
  const size_t run = (size_t)c->kw * cin;
  float *dst = cols;
  /* (b, p, q) of row r, stepped along (no divisions per row). */
  long b = (long)(row0 / hw), p = (long)((row0 % hw) / (size_t)c->wo), q = (long)(row0 % (size_t)c->wo) - 1;
  for (size_t r = row0; r < row0 + nrows; r++) {
    if (++q == c->wo) {
      q = 0;
      if (++p == c->ho) p = 0, b++;
    }
    const float *image = x + (size_t)b * (size_t)c->h * (size_t)c->w * cin;
    const long x0 = q * c->sw - c->left;
    const int inside = c->dw == 1 && x0 >= 0 && x0 + c->kw <= c->w;
    for (long i = 0; i < c->kh; i++) {
      const long y = p * c->sh - c->top + i * c->dh;
      if (y < 0 || y >= c->h) {
        memset(dst, 0, sizeof(float) * run);
        dst += run;
        continue;
      }
      const float *src = image + (size_t)y * (size_t)c->w * cin;
      if (inside) {
        memcpy(dst, src + (size_t)x0 * cin, sizeof(float) * run);
        dst += run;
        continue;
      }
      for (long j = 0; j < c->kw; j++, dst += cin) {
        const long xx = x0 + j * c->dw;
        if (xx < 0 || xx >= c->w) memset(dst, 0, sizeof(float) * cin);
        else memcpy(dst, src + (size_t)xx * cin, sizeof(float) * cin);
      }
    }
  }
}

/* dst[0..n) += src[0..n) */
VECTOR_CLONES
static void add_long(float *restrict dst, const float *restrict src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Short runs (one input channel: kw floats) inline; long ones through the vectorised clones. */
static inline void add_into(float *restrict dst, const float *restrict src, size_t n) {
  if (n >= 32) {
    add_long(dst, src, n);
    return;
  }
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* The adjoint of im2col: dx[b, y, x, ch] += cols[r, (i, j, ch)] over the same index map. */
static void col2im(const Conv *c, const float *cols, float *dx, size_t row0, size_t nrows) {
  const size_t cin = (size_t)c->cin;
  const size_t hw = (size_t)c->ho * (size_t)c->wo;
  const size_t run = (size_t)c->kw * cin;
  const float *src = cols;
  long b = (long)(row0 / hw), p = (long)((row0 % hw) / (size_t)c->wo), q = (long)(row0 % (size_t)c->wo) - 1;
  for (size_t r = row0; r < row0 + nrows; r++) {
    if (++q == c->wo) {
      q = 0;
      if (++p == c->ho) p = 0, b++;
    }
    float *image = dx + (size_t)b * (size_t)c->h * (size_t)c->w * cin;
    const long x0 = q * c->sw - c->left;
    const int inside = c->dw == 1 && x0 >= 0 && x0 + c->kw <= c->w;
    for (long i = 0; i < c->kh; i++, src += run) {
      const long y = p * c->sh - c->top + i * c->dh;
      if (y < 0 || y >= c->h) continue;
      float *row = image + (size_t)y * (size_t)c->w * cin;
      if (inside) {
        add_into(row + (size_t)x0 * cin, src, run);
        continue;
      }
      for (long j = 0; j < c->kw; j++) {
        const long xx = x0 + j * c->dw;
        if (xx >= 0 && xx < c->w) add_into(row + (size_t)xx * cin, src + (size_t)j * cin, cin);
      }
    }
  }
}

static size_t x_size(const Conv *c) { return (size_t)c->batch * (size_t)c->h * (size_t)c->w * (size_t)c->cin; }
static size_t y_size(const Conv *c) { return (size_t)c->batch * (size_t)c->ho * (size_t)c->wo * (size_t)c->cout; }
static size_t w_size(const Conv *c) { return (size_t)(c->kh * c->kw) * (size_t)c->cin * (size_t)c->cout; }

/* ---------------------------------------------------------------- direct convolution */

/*
 * Direct convolution, for layers whose output channels are a multiple of 16, on one BLAS thread:
 * no patch matrix. OpenBLAS on im2col reaches 70-90 GFLOP/s on a 32->64-channel layer and
 * 15-20 GFLOP/s on a layer with one input channel, most of it lost to writing and re-reading the
 * patch matrix (8x the input for a 4x4 filter at stride 2) and to its short inner products. Here
 * the patch of each output pixel is read straight from a zero-padded copy of the input (the input
 * itself when no padding is needed): the patch is `nseg` segments of `run` contiguous floats
 * (one per filter row; one per filter tap when the filter is dilated across), at fixed offsets
 * from the pixel's corner. The forward pass keeps a block of output pixels x up to 64 channels in
 * registers and streams the filter; the filter gradient keeps a block of filter rows x up to 64
 * channels in registers and streams the output pixels. Both use fused multiply-adds (the rest of
 * the file is compiled without contraction), which is what OpenBLAS does too.
 */

#define DIRECT_MAX_SEG 64
#define DIRECT_NV 4 /* channel vectors per register tile (64 channels); 2 and 3 measured slower */

typedef struct {
  const float *src; /* padded input (or x itself) */
  long img, row;    /* floats per image and per image row of src */
  long pix_step;    /* floats between horizontally adjacent output pixels' corners: sw * Cin */
  long row_step;    /* floats between vertically adjacent output pixels' corners: sh * row */
  long nseg, run;
  long segoff[DIRECT_MAX_SEG];
} Direct;

/* Whether the direct kernels take this convolution (else im2col + BLAS). */
static int direct_enabled = 1; /* VAELAB_CONV_DIRECT=0 turns the direct kernels off (to compare) */

static int direct_ok(const Conv *c) {
  if (!direct_enabled || c->cout % 16 != 0 || openblas_get_num_threads() != 1) return 0;
  long nseg = c->dw == 1 ? c->kh : c->kh * c->kw;
  return nseg <= DIRECT_MAX_SEG && !is_pointwise(c);
}

/* Walks output pixels in order, giving the corner of each one's receptive field in d->src. */
typedef struct {
  const Direct *d;
  long wo, ho, p, q;
  const float *image, *row;
} PixelWalk;

static void walk_start(PixelWalk *w, const Direct *d, const Conv *c, size_t r) {
  const size_t hw = (size_t)c->ho * (size_t)c->wo;
  w->d = d;
  w->wo = c->wo;
  w->ho = c->ho;
  w->p = (long)((r % hw) / (size_t)c->wo);
  w->q = (long)(r % (size_t)c->wo);
  w->image = d->src + (r / hw) * (size_t)d->img;
  w->row = w->image + (size_t)w->p * (size_t)d->row_step;
}

/* The current pixel's corner; then moves to the next pixel. */
static inline const float *walk_next(PixelWalk *w) {
  const float *base = w->row + (size_t)w->q * (size_t)w->d->pix_step;
  if (++w->q == w->wo) {
    w->q = 0;
    if (++w->p == w->ho) {
      w->p = 0;
      w->image += w->d->img;
      w->row = w->image;
    } else {
      w->row += w->d->row_step;
    }
  }
  return base;
}

/* The frame the direct kernels address: hp x wp pixels per image, x placed at (top, left). */
typedef struct {
  long hp, wp;
  int padded; /* 0 when x itself serves (no padding, and the frame fits inside x) */
} Frame;

static Frame direct_frame(const Conv *c) {
  Frame f;
  f.hp = (c->ho - 1) * c->sh + (c->kh - 1) * c->dh + 1;
  f.wp = (c->wo - 1) * c->sw + (c->kw - 1) * c->dw + 1;
  f.padded = !(c->top == 0 && c->left == 0 && f.hp <= c->h && f.wp <= c->w);
  return f;
}

/* Points d at `base`, laid out as the padded frame or as x itself, with its pixel steps. */
static void direct_layout(Direct *d, const Conv *c, const Frame *f, const float *base) {
  d->src = base;
  d->row = (f->padded ? f->wp : c->w) * c->cin;
  d->img = (f->padded ? f->hp : c->h) * d->row;
  d->pix_step = c->sw * c->cin;
  d->row_step = c->sh * d->row;
}

/*
 * dst[b, r, j] = src[b, r - dr, j - dc] (Cin floats per pixel) where that lies inside src, else 0:
 * dst is [batch, dh, dwid, Cin], src [batch, sh, swid, Cin], every float of dst written. Copies x
 * into the padded frame (dr, dc = top, left) and the frame's inside back out (-top, -left).
 */
static void shift_copy(float *dst, long dh, long dwid, const float *src, long sh, long swid, long batch, long cin, long dr, long dc) {
  const size_t drow = (size_t)dwid * (size_t)cin, srow = (size_t)swid * (size_t)cin;
  long lo = dc > 0 ? dc : 0, hi = swid + dc < dwid ? swid + dc : dwid;
  if (lo > dwid) lo = dwid;
  if (hi < lo) hi = lo;
  for (long b = 0; b < batch; b++) {
    for (long r = 0; r < dh; r++) {
      float *out = dst + ((size_t)b * (size_t)dh + (size_t)r) * drow;
      const long sr = r - dr;
      if (sr < 0 || sr >= sh) {
        memset(out, 0, sizeof(float) * drow);
        continue;
      }
      const float *in = src + ((size_t)b * (size_t)sh + (size_t)sr) * srow;
      memset(out, 0, sizeof(float) * (size_t)(lo * cin));
      memcpy(out + lo * cin, in + (lo - dc) * cin, sizeof(float) * (size_t)((hi - lo) * cin));
      memset(out + hi * cin, 0, sizeof(float) * (size_t)((dwid - hi) * cin));
    }
  }
}

/*
 * Sets up `d` for x; copies x into a zero-padded frame (batch * hp * wp * Cin floats, from
 * scratch_get) when the convolution pads. Returns 0 if a scratch buffer could not be had (error
 * already set).
 */
static int direct_setup(Args *a, const Conv *c, const float *x, Direct *d) {
  const long cin = c->cin;
  const Frame f = direct_frame(c);
  const float *base = x;
  if (f.padded) {
    float *pad = scratch_get(a, (size_t)c->batch * (size_t)f.hp * (size_t)f.wp * (size_t)cin);
    if (pad == NULL) return 0;
    shift_copy(pad, f.hp, f.wp, x, c->h, c->w, c->batch, cin, c->top, c->left);
    base = pad;
  }
  direct_layout(d, c, &f, base);
  if (c->dw == 1) {
    d->nseg = c->kh;
    d->run = c->kw * cin;
    for (long i = 0; i < c->kh; i++) d->segoff[i] = i * c->dh * d->row;
  } else {
    d->nseg = c->kh * c->kw;
    d->run = cin;
    for (long i = 0; i < c->kh; i++)
      for (long j = 0; j < c->kw; j++) d->segoff[i * c->kw + j] = i * c->dh * d->row + j * c->dw * cin;
  }
  return 1;
}

#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")

#define DIRECT_FWD(P, NV)                                                                        \
  do {                                                                                           \
    f32x16 acc[P][NV];                                                                           \
    for (int t = 0; t < (P); t++)                                                                \
      for (int u = 0; u < (NV); u++) acc[t][u] = (f32x16){0};                                    \
    const float *wr = w;                                                                         \
    for (long s = 0; s < d->nseg; s++) {                                                         \
      const long so = d->segoff[s];                                                              \
      for (long e = 0; e < d->run; e++, wr += ldw) {                                             \
        f32x16 wv[NV];                                                                           \
        for (int u = 0; u < (NV); u++) wv[u] = load16(wr + 16 * u);                              \
        for (int t = 0; t < (P); t++) {                                                          \
          const f32x16 av = SPLAT16(bp[t][so + e]);                                         \
          for (int u = 0; u < (NV); u++) acc[t][u] += av * wv[u];                                \
        }                                                                                        \
      }                                                                                          \
    }                                                                                            \
    for (int t = 0; t < (P); t++)                                                                \
      for (int u = 0; u < (NV); u++) store16(y + t * ldy + 16 * u, acc[t][u]);                   \
  } while (0)

/*
 * The register tiles of the forward and input-gradient kernels, by channel vectors nv: P = 12,
 * 12, 8, 6 output pixels for nv = 1..4, and one pixel for the remainder. K(P, NV) is the tile body.
 */
#define DIRECT_TILE_SWITCH(K)                                                                    \
  switch (nv * 16 + p) {                                                                         \
    case 1 * 16 + 12: K(12, 1); return;                                                          \
    case 2 * 16 + 12: K(12, 2); return;                                                          \
    case 3 * 16 + 8: K(8, 3); return;                                                            \
    case 4 * 16 + 6: K(6, 4); return;                                                            \
    case 1 * 16 + 1: K(1, 1); return;                                                            \
    case 2 * 16 + 1: K(1, 2); return;                                                            \
    case 3 * 16 + 1: K(1, 3); return;                                                            \
    case 4 * 16 + 1: K(1, 4); return;                                                            \
    default: return;                                                                             \
  }

#define DIRECT_FWD_FN(SUFFIX, ATTR)                                                              \
  ATTR static void direct_fwd_block_##SUFFIX(const Direct *d, int nv, int p, const float *const *bp, const float *w, long ldw, \
                                             float *y, long ldy) {                                       \
    DIRECT_TILE_SWITCH(DIRECT_FWD)                                                               \
  }

/* dw rows [k, k + E) (segment offset so + e0 .. e0+E-1), NV x 16 channels += Σ_r patch_r[k]ᵀ · dy_r over n pixels. */
#define DIRECT_DW(E, NV)                                                                         \
  do {                                                                                           \
    f32x16 acc[E][NV];                                                                           \
    for (int e = 0; e < (E); e++)                                                                \
      for (int u = 0; u < (NV); u++) acc[e][u] = first ? (f32x16){0} : load16(dwp + e * ldw + 16 * u); \
    for (long r = 0; r < n; r++) {                                                               \
      const float *xb = bp[r] + off;                                                             \
      f32x16 g[NV];                                                                              \
      for (int u = 0; u < (NV); u++) g[u] = load16(dy + r * ldy + 16 * u);                       \
      for (int e = 0; e < (E); e++) {                                                            \
        const f32x16 av = SPLAT16(xb[e]);                                                   \
        for (int u = 0; u < (NV); u++) acc[e][u] += av * g[u];                                   \
      }                                                                                          \
    }                                                                                            \
    for (int e = 0; e < (E); e++)                                                                \
      for (int u = 0; u < (NV); u++) store16(dwp + e * ldw + 16 * u, acc[e][u]);                 \
  } while (0)

#define DIRECT_DW_CASES(NV, EMAX)                                                                \
  case (NV) * 16 + (EMAX): DIRECT_DW(EMAX, NV); return;                                          \
  case (NV) * 16 + 4: DIRECT_DW(4, NV); return;                                                  \
  case (NV) * 16 + 2: DIRECT_DW(2, NV); return;                                                  \
  case (NV) * 16 + 1: DIRECT_DW(1, NV); return;

#define DIRECT_DW_FN(SUFFIX, ATTR)                                                               \
  ATTR static void direct_dw_block_##SUFFIX(int nv, int e_count, int first, const float *const *bp, long off, long n, \
                                            const float *dy, long ldy, float *dwp, long ldw) {          \
    switch (nv * 16 + e_count) {                                                                 \
      DIRECT_DW_CASES(1, 12)                                                                     \
      DIRECT_DW_CASES(2, 12)                                                                     \
      DIRECT_DW_CASES(3, 8)                                                                      \
      DIRECT_DW_CASES(4, 6)                                                                      \
      default: return;                                                                           \
    }                                                                                            \
  }

/*
 * dx at P output pixels' receptive fields (corners bp, padded coordinates), NV x 16 input
 * channels: for each filter tap k, dx[corner + tapoff[k]] += dy rows · wt[k], wt: [taps, Cout, ldw]
 * at the block's first channel.
 */
#define DIRECT_BWD(P, NV)                                                                        \
  do {                                                                                           \
    for (long k = 0; k < ntaps; k++) {                                                           \
      f32x16 acc[P][NV];                                                                         \
      for (int t = 0; t < (P); t++)                                                              \
        for (int u = 0; u < (NV); u++) acc[t][u] = (f32x16){0};                                  \
      const float *wk = w + k * cout * ldw;                                                      \
      for (long co = 0; co < cout; co++, wk += ldw) {                                            \
        f32x16 wv[NV];                                                                           \
        for (int u = 0; u < (NV); u++) wv[u] = load16(wk + 16 * u);                              \
        for (int t = 0; t < (P); t++) {                                                          \
          const f32x16 av = SPLAT16(dy[t * cout + co]);                                          \
          for (int u = 0; u < (NV); u++) acc[t][u] += av * wv[u];                                \
        }                                                                                        \
      }                                                                                          \
      const long o = tapoff[k];                                                                  \
      for (int t = 0; t < (P); t++)                                                              \
        for (int u = 0; u < (NV); u++) {                                                         \
          float *dst = bp[t] + o + 16 * u;                                                       \
          store16(dst, load16(dst) + acc[t][u]);                                                 \
        }                                                                                        \
    }                                                                                            \
  } while (0)

#define DIRECT_BWD_FN(SUFFIX, ATTR)                                                              \
  ATTR static void direct_bwd_block_##SUFFIX(int nv, int p, float *const *bp, const long *tapoff, long ntaps, const float *dy, \
                                             long cout, const float *w, long ldw) {              \
    DIRECT_TILE_SWITCH(DIRECT_BWD)                                                               \
  }

/*
 * Three builds of each kernel: AVX-512 + FMA, AVX2 + FMA, and the compiler's baseline, picked
 * once by the CPU's features (target_clones would pick by CPU model name, which virtual machines
 * often do not report, and it cannot name two features for one clone).
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
DIRECT_FWD_FN(avx512, __attribute__((target("avx512f,fma"))))
DIRECT_FWD_FN(avx2, __attribute__((target("avx2,fma"))))
DIRECT_DW_FN(avx512, __attribute__((target("avx512f,fma"))))
DIRECT_DW_FN(avx2, __attribute__((target("avx2,fma"))))
DIRECT_BWD_FN(avx512, __attribute__((target("avx512f,fma"))))
DIRECT_BWD_FN(avx2, __attribute__((target("avx2,fma"))))
#define HAVE_ISA_VARIANTS 1
#endif
DIRECT_FWD_FN(base, )
DIRECT_DW_FN(base, )
DIRECT_BWD_FN(base, )

#pragma GCC pop_options

typedef void (*DirectFwdFn)(const Direct *, int, int, const float *const *, const float *, long, float *, long);
typedef void (*DirectDwFn)(int, int, int, const float *const *, long, long, const float *, long, float *, long);
static DirectFwdFn direct_fwd_block = direct_fwd_block_base;
static DirectDwFn direct_dw_block = direct_dw_block_base;
typedef void (*DirectBwdFn)(int, int, float *const *, const long *, long, const float *, long, const float *, long);
static DirectBwdFn direct_bwd_block = direct_bwd_block_base;
static const char *direct_isa = "baseline";

/* Picks the kernel builds for this CPU (called once, when the module loads). */
static void direct_pick_isa(void) {
#ifdef HAVE_ISA_VARIANTS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
    direct_fwd_block = direct_fwd_block_avx512;
    direct_dw_block = direct_dw_block_avx512;
    direct_bwd_block = direct_bwd_block_avx512;
    direct_isa = "avx512f+fma";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    direct_fwd_block = direct_fwd_block_avx2;
    direct_dw_block = direct_dw_block_avx2;
    direct_bwd_block = direct_bwd_block_avx2;
    direct_isa = "avx2+fma";
  }
#endif
}

/* The largest filter-row block the register tile holds for NV vectors, and the pixel block of the forward pass. */
static int direct_emax(int nv) { return nv <= 2 ? 12 : nv == 3 ? 8 : 6; }
static int direct_pmax(int nv) { return nv <= 2 ? 12 : nv == 3 ? 8 : 6; }

/* y = conv2d(x, filter) by the direct kernel; d set up by direct_setup. */
static void direct_conv2d(const Conv *c, const Direct *d, const float *f, float *y) {
  const size_t rows = (size_t)c->batch * (size_t)c->ho * (size_t)c->wo;
  const long cout = c->cout;
  for (long co = 0, nv = 0; co < cout; co += 16 * nv) {
    nv = (cout - co) / 16 < DIRECT_NV ? (cout - co) / 16 : DIRECT_NV;
    const int pmax = direct_pmax(nv);
    const float *bp[12];
    PixelWalk walk;
    walk_start(&walk, d, c, 0);
    size_t r = 0;
    for (; r + (size_t)pmax <= rows; r += (size_t)pmax) {
      for (int t = 0; t < pmax; t++) bp[t] = walk_next(&walk);
      direct_fwd_block(d, nv, pmax, bp, f + co, cout, y + r * (size_t)cout + (size_t)co, cout);
    }
    for (; r < rows; r++) {
      bp[0] = walk_next(&walk);
      direct_fwd_block(d, nv, 1, bp, f + co, cout, y + r * (size_t)cout + (size_t)co, cout);
    }
  }
}

/* Output pixels per pass of the filter gradient: their dy rows stay in L1/L2 while every filter-row block runs over them. */
#define DIRECT_DW_CHUNK 128

/* dw = Σ over output pixels of patch(x)ᵀ · dy by the direct kernel; d set up by direct_setup. */
static void direct_backprop_filter(const Conv *c, const Direct *d, const float *dy, float *dw) {
  const size_t rows = (size_t)c->batch * (size_t)c->ho * (size_t)c->wo;
  const long cout = c->cout;
  const float *bp[DIRECT_DW_CHUNK];
  PixelWalk walk;
  walk_start(&walk, d, c, 0);
  for (size_t r0 = 0; r0 < rows; r0 += DIRECT_DW_CHUNK) {
    const long n = (long)(rows - r0 < DIRECT_DW_CHUNK ? rows - r0 : DIRECT_DW_CHUNK);
    for (long t = 0; t < n; t++) bp[t] = walk_next(&walk);
    for (long co = 0, nv = 0; co < cout; co += 16 * nv) {
      nv = (cout - co) / 16 < DIRECT_NV ? (cout - co) / 16 : DIRECT_NV;
      const int emax = direct_emax(nv);
      for (long s = 0; s < d->nseg; s++) {
        for (long e0 = 0; e0 < d->run;) {
          const long left = d->run - e0;
          const int ec = left >= emax ? emax : left >= 4 ? 4 : left >= 2 ? 2 : 1;
          float *dwp = dw + (size_t)(s * d->run + e0) * (size_t)cout + (size_t)co;
          direct_dw_block(nv, ec, r0 == 0, bp, d->segoff[s] + e0, n, dy + r0 * (size_t)cout + (size_t)co, cout, dwp, cout);
          e0 += ec;
        }
      }
    }
  }
}

/* Whether the direct kernel takes the input gradient (else BLAS + col2im): input channels a multiple of 16. */
static int direct_bwd_ok(const Conv *c) {
  return direct_enabled && c->cin % 16 == 0 && openblas_get_num_threads() == 1 && c->kh * c->kw <= DIRECT_MAX_SEG && !is_pointwise(c);
}

/*
 * dx = the input gradient of conv2d by the direct kernel: each block of output pixels adds
 * dy · filter[tap]ᵀ into dx at every filter tap (no column matrix). Works in a zero-padded
 * buffer when the convolution pads (then copies the inside out), else in dx itself.
 */
static int direct_backprop_input(Args *a, const Conv *c, const float *dy, const float *f, float *dx) {
  const long cin = c->cin, cout = c->cout, ntaps = c->kh * c->kw;
  const Frame fr = direct_frame(c);
  const size_t wt_len = (size_t)ntaps * (size_t)cin * (size_t)cout;
  const size_t pad_len = fr.padded ? (size_t)c->batch * (size_t)fr.hp * (size_t)fr.wp * (size_t)cin : 0;
  float *buf = scratch_get(a, wt_len + pad_len);
  if (buf == NULL) return 0;
  /* wt[k, co, ci] = filter[k, ci, co]: rows over input channels, which the kernel keeps in registers. */
  float *wt = buf;
  for (long k = 0; k < ntaps; k++)
    for (long ci = 0; ci < cin; ci++)
      for (long co = 0; co < cout; co++) wt[(k * cout + co) * cin + ci] = f[(k * cin + ci) * cout + co];
  /* The sums go into the zeroed frame, or into dx itself when no padding is needed. */
  float *dst = fr.padded ? buf + wt_len : dx;
  memset(dst, 0, sizeof(float) * (fr.padded ? pad_len : x_size(c)));
  Direct d;
  direct_layout(&d, c, &fr, dst);
  long tapoff[DIRECT_MAX_SEG];
  for (long i = 0; i < c->kh; i++)
    for (long j = 0; j < c->kw; j++) tapoff[i * c->kw + j] = i * c->dh * d.row + j * c->dw * cin;
  const size_t rows = (size_t)c->batch * (size_t)c->ho * (size_t)c->wo;
  for (long ci = 0, nv = 0; ci < cin; ci += 16 * nv) {
    nv = (cin - ci) / 16 < DIRECT_NV ? (cin - ci) / 16 : DIRECT_NV;
    const int pmax = direct_pmax(nv);
    float *bp[12];
    PixelWalk walk;
    walk_start(&walk, &d, c, 0);
    size_t r = 0;
    for (; r < rows;) {
      const int p = r + (size_t)pmax <= rows ? pmax : 1;
      /* The walk hands out const corners of d.src, which is dst here. */
      for (int t = 0; t < p; t++) bp[t] = (float *)walk_next(&walk) + ci;
      direct_bwd_block(nv, p, bp, tapoff, ntaps, dy + r * (size_t)cout, cout, wt + ci, cin);
      r += (size_t)p;
    }
  }
  /* dx[b, ys, xs] = dst[b, ys + top, xs + left] where that lies in the frame, else 0. */
  if (fr.padded) shift_copy(dx, c->h, c->w, dst, fr.hp, fr.wp, c->batch, cin, -c->top, -c->left);
  return 1;
}

/* conv2d(x, filter, y, info): y = conv2d(x, filter). x: [B,H,W,Cin], filter: [kh,kw,Cin,Cout], y: [B,Ho,Wo,Cout]. */
static napi_value js_conv2d(napi_env env, napi_callback_info info) {
  Args a;
  Conv c;
  size_t lx, lf, ly;
  if (!args_init(&a, env, info, "conv2d", 4)) return NULL;
  float *x = arg_f32(&a, 0, "x", &lx);
  float *f = arg_f32(&a, 1, "filter", &lf);
  float *y = arg_f32(&a, 2, "y", &ly);
  read_conv(&a, 3, &c);
  exact_len(&a, "x", lx, x_size(&c));
  exact_len(&a, "filter", lf, w_size(&c));
  exact_len(&a, "y", ly, y_size(&c));
  if (a.failed) return NULL;
  const size_t patch = (size_t)(c.kh * c.kw * c.cin);
  const size_t rows = (size_t)c.batch * (size_t)c.ho * (size_t)c.wo;
  if (rows == 0) return undefined_value(env);
  if (is_pointwise(&c)) {
    gemm(0, 0, rows, c.cout, patch, 1.0f, x, patch, f, c.cout, 0.0f, y, c.cout);
    return undefined_value(env);
  }
  if (direct_ok(&c)) {
    Direct d;
    if (!direct_setup(&a, &c, x, &d)) return NULL;
    direct_conv2d(&c, &d, f, y);
    return undefined_value(env);
  }
  const size_t step = chunk_rows(&c);
  float *cols = scratch_get(&a, step * patch);
  if (cols == NULL) return NULL;
  for (size_t r0 = 0; r0 < rows; r0 += step) {
    const size_t nr = rows - r0 < step ? rows - r0 : step;
    im2col(&c, x, cols, r0, nr);
    gemm(0, 0, nr, c.cout, patch, 1.0f, cols, patch, f, c.cout, 0.0f, y + r0 * (size_t)c.cout, c.cout);
  }
  return undefined_value(env);
}

/*
 * conv2dBackpropFilter(x, dy, dw, info): dw = sum over output pixels of patch(x)ᵀ · dy.
 * x: [B,H,W,Cin], dy: [B,Ho,Wo,Cout], dw: [kh,kw,Cin,Cout].
 */
static napi_value js_conv2d_backprop_filter(napi_env env, napi_callback_info info) {
  Args a;
  Conv c;
  size_t lx, ld, lw;
  if (!args_init(&a, env, info, "conv2dBackpropFilter", 4)) return NULL;
  float *x = arg_f32(&a, 0, "x", &lx);
  float *dy = arg_f32(&a, 1, "dy", &ld);
  float *dw = arg_f32(&a, 2, "dw", &lw);
  read_conv(&a, 3, &c);
  exact_len(&a, "x", lx, x_size(&c));
  exact_len(&a, "dy", ld, y_size(&c));
  exact_len(&a, "dw", lw, w_size(&c));
  if (a.failed) return NULL;
  const size_t patch = (size_t)(c.kh * c.kw * c.cin);
  const size_t rows = (size_t)c.batch * (size_t)c.ho * (size_t)c.wo;
  if (rows == 0) {
    memset(dw, 0, sizeof(float) * lw);
    return undefined_value(env);
  }
  if (is_pointwise(&c)) {
    gemm(1, 0, patch, c.cout, rows, 1.0f, x, patch, dy, c.cout, 0.0f, dw, c.cout);
    return undefined_value(env);
  }
  if (direct_ok(&c)) {
    Direct d;
    if (!direct_setup(&a, &c, x, &d)) return NULL;
    direct_backprop_filter(&c, &d, dy, dw);
    return undefined_value(env);
  }
  const size_t step = chunk_rows(&c);
  float *cols = scratch_get(&a, step * patch);
  if (cols == NULL) return NULL;
  for (size_t r0 = 0; r0 < rows; r0 += step) {
    const size_t nr = rows - r0 < step ? rows - r0 : step;
    im2col(&c, x, cols, r0, nr);
    gemm(1, 0, patch, c.cout, nr, 1.0f, cols, patch, dy + r0 * (size_t)c.cout, c.cout, r0 == 0 ? 0.0f : 1.0f, dw, c.cout);
  }
  return undefined_value(env);
}

/*
 * conv2dBackpropInput(dy, filter, dx, info): dx = col2im(dy · filterᵀ), the input gradient of
 * conv2d (and the forward pass of conv2dTranspose). dy: [B,Ho,Wo,Cout], filter: [kh,kw,Cin,Cout],
 * dx: [B,H,W,Cin] (overwritten).
 */
static napi_value js_conv2d_backprop_input(napi_env env, napi_callback_info info) {
  Args a;
  Conv c;
  size_t ld, lf, lx;
  if (!args_init(&a, env, info, "conv2dBackpropInput", 4)) return NULL;
  float *dy = arg_f32(&a, 0, "dy", &ld);
  float *f = arg_f32(&a, 1, "filter", &lf);
  float *dx = arg_f32(&a, 2, "dx", &lx);
  read_conv(&a, 3, &c);
  exact_len(&a, "dy", ld, y_size(&c));
  exact_len(&a, "filter", lf, w_size(&c));
  exact_len(&a, "dx", lx, x_size(&c));
  if (a.failed) return NULL;
  const size_t patch = (size_t)(c.kh * c.kw * c.cin);
  const size_t rows = (size_t)c.batch * (size_t)c.ho * (size_t)c.wo;
  if (is_pointwise(&c) && rows > 0) {
    gemm(0, 1, rows, patch, c.cout, 1.0f, dy, c.cout, f, c.cout, 0.0f, dx, patch);
    return undefined_value(env);
  }
  if (rows > 0 && direct_bwd_ok(&c)) return direct_backprop_input(&a, &c, dy, f, dx) ? undefined_value(env) : NULL;
  memset(dx, 0, sizeof(float) * lx);
  if (rows == 0) return undefined_value(env);
  const size_t step = chunk_rows(&c);
  float *cols = scratch_get(&a, step * patch);
  if (cols == NULL) return NULL;
  for (size_t r0 = 0; r0 < rows; r0 += step) {
    const size_t nr = rows - r0 < step ? rows - r0 : step;
    gemm(0, 1, nr, patch, c.cout, 1.0f, dy + r0 * (size_t)c.cout, c.cout, f, c.cout, 0.0f, cols, patch);
    col2im(&c, cols, dx, r0, nr);
  }
  return undefined_value(env);
}

/* ---------------------------------------------------------------- column sums */

#define SUM_BLOCK 64

/* acc[j] += the float sum of rows [r0, r1) of column j, taken row by row (vectorised over j). */
VECTOR_CLONES
static void add_block_sums(const float *x, size_t r0, size_t r1, size_t cols, float *part, double *acc) {
  for (size_t j = 0; j < cols; j++) part[j] = 0.0f;
  for (size_t r = r0; r < r1; r++) {
    const float *row = x + r * cols;
    for (size_t j = 0; j < cols; j++) part[j] += row[j];
  }
  for (size_t j = 0; j < cols; j++) acc[j] += (double)part[j];
}

/*
 * sumRows(x, rows, cols, out): out[j] = sum over i of x[i, j], x viewed as [rows, cols]: a sum
 * over the leading axes (a bias gradient). Rows are summed in float in blocks of 64 and the
 * block sums in double, so the error does not grow with the row count.
 */
static napi_value js_sum_rows(napi_env env, napi_callback_info info) {
  Args a;
  size_t lx, lo;
  if (!args_init(&a, env, info, "sumRows", 4)) return NULL;
  float *x = arg_f32(&a, 0, "x", &lx);
  long rows = arg_int(&a, 1, "rows", 0);
  long cols = arg_int(&a, 2, "cols", 1);
  float *out = arg_f32(&a, 3, "out", &lo);
  exact_len(&a, "x", lx, (size_t)rows * (size_t)cols);
  exact_len(&a, "out", lo, (size_t)cols);
  if (a.failed) return NULL;
  /* cols doubles and cols floats of scratch (the im2col buffer; calls never overlap). */
  float *buf = scratch_get(&a, 3 * (size_t)cols + 2);
  if (buf == NULL) return NULL;
  double *acc = (double *)(((uintptr_t)buf + 7) & ~(uintptr_t)7);
  float *part = (float *)(acc + cols);
  for (long j = 0; j < cols; j++) acc[j] = 0.0;
  for (size_t r0 = 0; r0 < (size_t)rows; r0 += SUM_BLOCK) {
    const size_t r1 = r0 + SUM_BLOCK < (size_t)rows ? r0 + SUM_BLOCK : (size_t)rows;
    add_block_sums(x, r0, r1, (size_t)cols, part, acc);
  }
  for (long j = 0; j < cols; j++) out[j] = (float)acc[j];
  return undefined_value(env);
}

/* ---------------------------------------------------------------- bias add */

VECTOR_CLONES
static void add_row(const float *restrict x, const float *restrict b, float *restrict y, size_t n) {
  for (size_t j = 0; j < n; j++) y[j] = x[j] + b[j];
}

VECTOR_CLONES
static void add_scalar(const float *restrict x, float b, float *restrict y, size_t n) {
  for (size_t j = 0; j < n; j++) y[j] = x[j] + b;
}

/* y = max(x + b, 0) on one row; NaN stays NaN (relu(add) in tfjs). */
VECTOR_CLONES
static void add_relu_row(const float *restrict x, const float *restrict b, float *restrict y, size_t n) {
  for (size_t j = 0; j < n; j++) {
    const float v = x[j] + b[j];
    y[j] = v > 0.0f || v != v ? v : 0.0f;
  }
}

VECTOR_CLONES
static void add_relu_scalar(const float *restrict x, float b, float *restrict y, size_t n) {
  for (size_t j = 0; j < n; j++) {
    const float v = x[j] + b;
    y[j] = v > 0.0f || v != v ? v : 0.0f;
  }
}

/*
 * biasAdd(x, bias, y): x and y viewed as [rows, n], bias [n]; y = x + bias on every row (the
 * bias add of a dense or conv layer, which tfjs's wasm Add runs through its generic broadcast
 * loop).
 */
static napi_value bias_add_impl(napi_env env, napi_callback_info info, const char *fn, int relu) {
  Args a;
  size_t lx, lb, ly;
  if (!args_init(&a, env, info, fn, 3)) return NULL;
  const float *x = arg_f32(&a, 0, "x", &lx);
  const float *b = arg_f32(&a, 1, "bias", &lb);
  float *y = arg_f32(&a, 2, "y", &ly);
  exact_len(&a, "y", ly, lx);
  if (!a.failed && (lb == 0 || lx % lb != 0)) {
    char msg[160];
    snprintf(msg, sizeof msg, "vaelab_native.%s: x must hold a whole number of rows of bias (%zu floats); got %zu", fn, lb, lx);
    napi_throw_range_error(env, NULL, msg);
    return NULL;
  }
  if (a.failed) return NULL;
  if (lb == 1) {
    if (relu) add_relu_scalar(x, b[0], y, lx);
    else add_scalar(x, b[0], y, lx);
  } else {
    for (size_t r = 0; r < lx / lb; r++) {
      if (relu) add_relu_row(x + r * lb, b, y + r * lb, lb);
      else add_row(x + r * lb, b, y + r * lb, lb);
    }
  }
  return undefined_value(env);
}

static napi_value js_bias_add(napi_env env, napi_callback_info info) { return bias_add_impl(env, info, "biasAdd", 0); }

/* biasRelu(x, bias, y): y = max(x + bias, 0) on every row (a layer's bias and relu in one pass). */
static napi_value js_bias_relu(napi_env env, napi_callback_info info) { return bias_add_impl(env, info, "biasRelu", 1); }

/* ---------------------------------------------------------------- KL to a standard normal */

/*
 * Arguments (p, q, out, rows, cols) of a row reduction of two [rows, cols] matrices into
 * out [rows], checked; false (with the exception pending) when they are wrong.
 */
typedef struct {
  const float *p, *q;
  float *out;
  long rows, cols;
} RowPair;

static int row_pair_args(Args *a, const char *pName, const char *qName, RowPair *r) {
  size_t lp, lq, lo;
  r->p = arg_f32(a, 0, pName, &lp);
  r->q = arg_f32(a, 1, qName, &lq);
  r->out = arg_f32(a, 2, "out", &lo);
  r->rows = arg_int(a, 3, "rows", 0);
  r->cols = arg_int(a, 4, "cols", 0);
  exact_len(a, pName, lp, (size_t)r->rows * (size_t)r->cols);
  exact_len(a, qName, lq, (size_t)r->rows * (size_t)r->cols);
  exact_len(a, "out", lo, (size_t)r->rows);
  return !a->failed;
}

/*
 * klStdNormal(loc, logVar, out, rows, cols): out[r] = 0.5 sum_c (loc^2 + exp(logVar) - logVar - 1),
 * KL(N(loc, exp(logVar)) || N(0, I)) of each row; terms in float32, the row summed in double.
 */
static napi_value js_kl_std_normal(napi_env env, napi_callback_info info) {
  Args a;
  RowPair rp;
  if (!args_init(&a, env, info, "klStdNormal", 5) || !row_pair_args(&a, "loc", "logVar", &rp)) return NULL;
  const float *loc = rp.p, *lv_ = rp.q;
  float *out = rp.out;
  const long rows = rp.rows, cols = rp.cols;
  for (long r = 0; r < rows; r++) {
    const size_t base = (size_t)r * (size_t)cols;
    double acc = 0.0;
    for (long c = 0; c < cols; c++) {
      const float m = loc[base + c], v = lv_[base + c];
      acc += (double)(((m * m + expf(v)) - v) - 1.0f);
    }
    out[r] = (float)(0.5 * acc);
  }
  return undefined_value(env);
}

/* Four float arrays of one length (the last written): the arguments of the reparameterisation kernels. */
static int four_arrays(Args *a, const char *n0, const char *n1, const char *n2, const char *n3, float **v, size_t *len) {
  size_t l[4];
  const char *names[4] = {n0, n1, n2, n3};
  for (int i = 0; i < 4; i++) v[i] = arg_f32(a, (size_t)i, names[i], &l[i]);
  for (int i = 1; i < 4; i++) exact_len(a, names[i], l[i], l[0]);
  *len = l[0];
  return !a->failed;
}

/*
 * reparam(loc, logVar, eps, z): z = loc + exp(logVar * 0.5) * eps, the reparameterised sample
 * of N(loc, exp(logVar)), with the rounding steps of the tfjs ops it replaces (exp from libm).
 */
static napi_value js_reparam(napi_env env, napi_callback_info info) {
  Args a;
  float *v[4];
  size_t n;
  if (!args_init(&a, env, info, "reparam", 4) || !four_arrays(&a, "loc", "logVar", "eps", "z", v, &n)) return NULL;
  const float *loc = v[0], *lv = v[1], *eps = v[2];
  float *z = v[3];
  for (size_t i = 0; i < n; i++) z[i] = loc[i] + expf(lv[i] * 0.5f) * eps[i];
  return undefined_value(env);
}

/*
 * reparamGrad(dz, logVar, eps, dlogVar): the gradient of reparam for logVar,
 * ((dz * eps) * exp(logVar * 0.5)) * 0.5, in the order tfjs's Add, Mul, Exp and Mul gradients take.
 */
static napi_value js_reparam_grad(napi_env env, napi_callback_info info) {
  Args a;
  float *v[4];
  size_t n;
  if (!args_init(&a, env, info, "reparamGrad", 4) || !four_arrays(&a, "dz", "logVar", "eps", "dlogVar", v, &n)) return NULL;
  const float *dz = v[0], *lv = v[1], *eps = v[2];
  float *dlv = v[3];
  for (size_t i = 0; i < n; i++) dlv[i] = ((dz[i] * eps[i]) * expf(lv[i] * 0.5f)) * 0.5f;
  return undefined_value(env);
}

/*
 * reparamLogProb(logVar, eps, out, rows, cols): out[r] = -0.5 sum_c (eps^2 + logVar + log 2pi),
 * log N(z; loc, exp(logVar)) of z = loc + exp(logVar / 2) eps, per row; terms in float32 (log 2pi
 * rounded to float, as the tfjs formula adds it), the row summed in double.
 */
static napi_value js_reparam_log_prob(napi_env env, napi_callback_info info) {
  Args a;
  RowPair rp;
  if (!args_init(&a, env, info, "reparamLogProb", 5) || !row_pair_args(&a, "logVar", "eps", &rp)) return NULL;
  const float log2pi = 1.8378770664093453f;
  for (long r = 0; r < rp.rows; r++) {
    const size_t base = (size_t)r * (size_t)rp.cols;
    double acc = 0.0;
    for (long c = 0; c < rp.cols; c++) {
      const float e = rp.q[base + c];
      acc += (double)((e * e + rp.p[base + c]) + log2pi);
    }
    rp.out[r] = (float)(-0.5 * acc);
  }
  return undefined_value(env);
}

/*
 * klStdNormalGrad(dy, loc, logVar, dloc, dlogVar, rows, cols): the gradient of klStdNormal,
 * dloc = dy loc, dlogVar = dy 0.5 (exp(logVar) - 1), dy[r] spread over row r.
 */
static napi_value js_kl_std_normal_grad(napi_env env, napi_callback_info info) {
  Args a;
  size_t ld, lm, lv, lgm, lgv;
  if (!args_init(&a, env, info, "klStdNormalGrad", 7)) return NULL;
  const float *dy = arg_f32(&a, 0, "dy", &ld);
  const float *loc = arg_f32(&a, 1, "loc", &lm);
  const float *lv_ = arg_f32(&a, 2, "logVar", &lv);
  float *gm = arg_f32(&a, 3, "dloc", &lgm);
  float *gv = arg_f32(&a, 4, "dlogVar", &lgv);
  long rows = arg_int(&a, 5, "rows", 0);
  long cols = arg_int(&a, 6, "cols", 0);
  const size_t n = (size_t)rows * (size_t)cols;
  exact_len(&a, "dy", ld, (size_t)rows);
  exact_len(&a, "loc", lm, n);
  exact_len(&a, "logVar", lv, n);
  exact_len(&a, "dloc", lgm, n);
  exact_len(&a, "dlogVar", lgv, n);
  if (a.failed) return NULL;
  for (long r = 0; r < rows; r++) {
    const size_t base = (size_t)r * (size_t)cols;
    const float d = dy[r];
    for (long c = 0; c < cols; c++) {
      gm[base + c] = d * loc[base + c];
      gv[base + c] = d * (0.5f * (expf(lv_[base + c]) - 1.0f));
    }
  }
  return undefined_value(env);
}

/* ---------------------------------------------------------------- relu */

/* y = max(x, 0); NaN stays NaN, as tfjs's Relu keeps it. */
VECTOR_CLONES
static void relu_loop(const float *restrict x, float *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f || x[i] != x[i] ? x[i] : 0.0f;
}

/* dx = dy * step(x): dy where x > 0, 0 where x <= 0, NaN where x is NaN (as tfjs's Step gives). */
VECTOR_CLONES
static void relu_grad_loop(const float *restrict dy, const float *restrict x, float *restrict dx, size_t n) {
  for (size_t i = 0; i < n; i++) {
    /* every value computed, then selected: branch-free, so that the loop vectorises */
    const float d = dy[i], v = x[i];
    const float kept = v > 0.0f ? d : 0.0f * d;
    dx[i] = v != v ? v : kept;
  }
}

/* relu(x, y): y = max(x, 0), elementwise over equal-length arrays. */
static napi_value js_relu(napi_env env, napi_callback_info info) {
  Args a;
  size_t lx, ly;
  if (!args_init(&a, env, info, "relu", 2)) return NULL;
  const float *x = arg_f32(&a, 0, "x", &lx);
  float *y = arg_f32(&a, 1, "y", &ly);
  exact_len(&a, "y", ly, lx);
  if (a.failed) return NULL;
  relu_loop(x, y, lx);
  return undefined_value(env);
}

/* reluGrad(dy, x, dx): the gradient of relu at x (its input), dx = dy * step(x). */
static napi_value js_relu_grad(napi_env env, napi_callback_info info) {
  Args a;
  size_t ldy, lx, ldx;
  if (!args_init(&a, env, info, "reluGrad", 3)) return NULL;
  const float *dy = arg_f32(&a, 0, "dy", &ldy);
  const float *x = arg_f32(&a, 1, "x", &lx);
  float *dx = arg_f32(&a, 2, "dx", &ldx);
  exact_len(&a, "x", lx, ldy);
  exact_len(&a, "dx", ldx, ldy);
  if (a.failed) return NULL;
  relu_grad_loop(dy, x, dx, ldy);
  return undefined_value(env);
}

/* ---------------------------------------------------------------- leaky relu */

/* y = x < 0 ? alpha x : x, as tfjs's LeakyRelu (NaN stays NaN); under the pack's denormals-are-zero
 * mode a denormal x counts as 0 in the comparison (y = x, where tfjs gives alpha x). */
VECTOR_CLONES
static void leaky_relu_loop(const float *restrict x, float *restrict y, size_t n, float alpha) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? alpha * x[i] : x[i];
}

/* dx = x > 0 ? dy : alpha dy, as tfjs's gradient of LeakyRelu (where(x > 0, dy, alpha dy)); a
 * denormal x > 0 counts as 0 (alpha dy), as in leaky_relu_loop. */
VECTOR_CLONES
static void leaky_relu_grad_loop(const float *restrict dy, const float *restrict x, float *restrict dx, size_t n, float alpha) {
  for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : alpha * dy[i];
}

/* leakyRelu(x, y, alpha): elementwise over equal-length arrays. */
static napi_value js_leaky_relu(napi_env env, napi_callback_info info) {
  Args a;
  size_t lx, ly;
  if (!args_init(&a, env, info, "leakyRelu", 3)) return NULL;
  const float *x = arg_f32(&a, 0, "x", &lx);
  float *y = arg_f32(&a, 1, "y", &ly);
  const float alpha = (float)arg_num(&a, 2, "alpha");
  exact_len(&a, "y", ly, lx);
  if (a.failed) return NULL;
  leaky_relu_loop(x, y, lx, alpha);
  return undefined_value(env);
}

/* leakyReluGrad(dy, x, dx, alpha): the gradient at x (the input). */
static napi_value js_leaky_relu_grad(napi_env env, napi_callback_info info) {
  Args a;
  size_t ldy, lx, ldx;
  if (!args_init(&a, env, info, "leakyReluGrad", 4)) return NULL;
  const float *dy = arg_f32(&a, 0, "dy", &ldy);
  const float *x = arg_f32(&a, 1, "x", &lx);
  float *dx = arg_f32(&a, 2, "dx", &ldx);
  const float alpha = (float)arg_num(&a, 3, "alpha");
  exact_len(&a, "x", lx, ldy);
  exact_len(&a, "dx", ldx, ldy);
  if (a.failed) return NULL;
  leaky_relu_grad_loop(dy, x, dx, ldy, alpha);
  return undefined_value(env);
}

/* ---------------------------------------------------------------- batch normalisation */

/* acc[j] += row[j] over one row (double accumulators: the sums of a whole batch stay exact to float32). */
VECTOR_CLONES
static void acc_row(double *restrict acc, const float *restrict row, size_t n) {
  for (size_t j = 0; j < n; j++) acc[j] += (double)row[j];
}

/* acc[j] += (row[j] - mean[j])^2 over one row. */
VECTOR_CLONES
static void acc_sq_row(double *restrict acc, const float *restrict row, const double *restrict mean, size_t n) {
  for (size_t j = 0; j < n; j++) {
    const double d = (double)row[j] - mean[j];
    acc[j] += d * d;
  }
}

/* y[j] = (x[j] - mean[j]) g[j] + offset[j] with g = invstd * scale, over one row. */
VECTOR_CLONES
static void bn_row(const float *restrict x, const float *restrict mean, const float *restrict g, const float *restrict offset, float *restrict y, size_t n) {
  for (size_t j = 0; j < n; j++) y[j] = (x[j] - mean[j]) * g[j] + offset[j];
}

/* Gradient sums over one row: s1[j] += dy[j], s2[j] += dy[j] (x[j] - mean[j]). */
VECTOR_CLONES
static void bn_grad_acc_row(double *restrict s1, double *restrict s2, const float *restrict dy, const float *restrict x, const float *restrict mean, size_t n) {
  for (size_t j = 0; j < n; j++) {
    s1[j] += (double)dy[j];
    s2[j] += (double)dy[j] * (double)(x[j] - mean[j]);
  }
}

/* dx[j] = c[j] dy[j] - a[j] - (x[j] - mean[j]) b[j] over one row. */
VECTOR_CLONES
static void bn_grad_row(const float *restrict dy, const float *restrict x, const float *restrict mean, const float *restrict a, const float *restrict b, const float *restrict c, float *restrict dx, size_t n) {
  for (size_t j = 0; j < n; j++) dx[j] = c[j] * dy[j] - a[j] - (x[j] - mean[j]) * b[j];
}

/*
 * batchNorm(x, scale, offset, y, mean, variance, rows, cols, epsilon): batch normalisation of a
 * [rows, cols] row-major x over its rows with the batch's statistics (training):
 * mean[j] = sum_i x[i, j] / rows, variance[j] = sum_i (x[i, j] - mean[j])^2 / rows (biased),
 * y = (x - mean) / sqrt(variance + epsilon) * scale + offset. Sums in double; mean and variance
 * are written as well (the caller's running statistics). rows >= 1.
 */
static napi_value js_batch_norm(napi_env env, napi_callback_info info) {
  Args a;
  size_t lx, ls, lo, ly, lm, lv;
  if (!args_init(&a, env, info, "batchNorm", 9)) return NULL;
  const float *x = arg_f32(&a, 0, "x", &lx);
  const float *scale = arg_f32(&a, 1, "scale", &ls);
  const float *offset = arg_f32(&a, 2, "offset", &lo);
  float *y = arg_f32(&a, 3, "y", &ly);
  float *mean = arg_f32(&a, 4, "mean", &lm);
  float *var = arg_f32(&a, 5, "variance", &lv);
  const size_t rows = (size_t)arg_int(&a, 6, "rows", 1);
  const size_t cols = (size_t)arg_int(&a, 7, "cols", 1);
  const double eps = arg_num(&a, 8, "epsilon");
  exact_len(&a, "x", lx, rows * cols);
  exact_len(&a, "y", ly, rows * cols);
  exact_len(&a, "scale", ls, cols);
  exact_len(&a, "offset", lo, cols);
  exact_len(&a, "mean", lm, cols);
  exact_len(&a, "variance", lv, cols);
  if (a.failed) return NULL;
  /* scratch: two double rows (sums) and one float row (the gain), as floats */
  float *scratch = scratch_get(&a, 5 * cols);
  if (scratch == NULL) return NULL;
  double *sum = (double *)scratch, *dmean = sum + cols;
  float *g = (float *)(dmean + cols);
  memset(sum, 0, cols * sizeof(double));
  for (size_t i = 0; i < rows; i++) acc_row(sum, x + i * cols, cols);
  for (size_t j = 0; j < cols; j++) {
    dmean[j] = sum[j] / (double)rows;
    sum[j] = 0.0;
  }
  for (size_t i = 0; i < rows; i++) acc_sq_row(sum, x + i * cols, dmean, cols);
  for (size_t j = 0; j < cols; j++) {
    const double v = sum[j] / (double)rows;
    mean[j] = (float)dmean[j];
    var[j] = (float)v;
    g[j] = (float)((double)scale[j] / sqrt(v + eps));
  }
  for (size_t i = 0; i < rows; i++) bn_row(x + i * cols, mean, g, offset, y + i * cols, cols);
  return undefined_value(env);
}

/*
 * batchNormGrad(dy, x, scale, mean, variance, dmean, dvariance, dx, dscale, doffset, rows, cols,
 * epsilon): the gradient of batchNorm for x, scale and offset from the gradients of its three
 * outputs (y: dy [rows, cols]; the mean and the variance: dmean, dvariance [cols], zeros when
 * they only feed running averages). With r = 1 / sqrt(variance + epsilon), xhat = (x - mean) r,
 * s1 = sum_i dy[i, j] and s2 = sum_i dy[i, j] (x[i, j] - mean[j]): doffset = s1, dscale = s2 r,
 * dx = scale r (dy - s1 / rows - xhat r s2 / rows) + dmean / rows + 2 (x - mean) dvariance / rows.
 */
static napi_value js_batch_norm_grad(napi_env env, napi_callback_info info) {
  Args a;
  size_t ldy, lx, ls, lm, lv, ldm, ldv, ldx, lds, ldo;
  if (!args_init(&a, env, info, "batchNormGrad", 13)) return NULL;
  const float *dy = arg_f32(&a, 0, "dy", &ldy);
  const float *x = arg_f32(&a, 1, "x", &lx);
  const float *scale = arg_f32(&a, 2, "scale", &ls);
  const float *mean = arg_f32(&a, 3, "mean", &lm);
  const float *var = arg_f32(&a, 4, "variance", &lv);
  const float *dmean = arg_f32(&a, 5, "dmean", &ldm);
  const float *dvar = arg_f32(&a, 6, "dvariance", &ldv);
  float *dx = arg_f32(&a, 7, "dx", &ldx);
  float *dscale = arg_f32(&a, 8, "dscale", &lds);
  float *doffset = arg_f32(&a, 9, "doffset", &ldo);
  const size_t rows = (size_t)arg_int(&a, 10, "rows", 1);
  const size_t cols = (size_t)arg_int(&a, 11, "cols", 1);
  const double eps = arg_num(&a, 12, "epsilon");
  exact_len(&a, "dy", ldy, rows * cols);
  exact_len(&a, "x", lx, rows * cols);
  exact_len(&a, "dx", ldx, rows * cols);
  exact_len(&a, "scale", ls, cols);
  exact_len(&a, "mean", lm, cols);
  exact_len(&a, "variance", lv, cols);
  exact_len(&a, "dmean", ldm, cols);
  exact_len(&a, "dvariance", ldv, cols);
  exact_len(&a, "dscale", lds, cols);
  exact_len(&a, "doffset", ldo, cols);
  if (a.failed) return NULL;
  /* scratch: two double rows (sums), three float rows (the row coefficients) */
  float *scratch = scratch_get(&a, 7 * cols);
  if (scratch == NULL) return NULL;
  double *s1 = (double *)scratch, *s2 = s1 + cols;
  float *ca = (float *)(s2 + cols), *cb = ca + cols, *cc = cb + cols;
  memset(s1, 0, 2 * cols * sizeof(double));
  for (size_t i = 0; i < rows; i++) bn_grad_acc_row(s1, s2, dy + i * cols, x + i * cols, mean, cols);
  for (size_t j = 0; j < cols; j++) {
    const double r = 1.0 / sqrt((double)var[j] + eps);
    const double c = (double)scale[j] * r, n = (double)rows;
    doffset[j] = (float)s1[j];
    dscale[j] = (float)(s2[j] * r);
    /* dx = c dy - (c s1 - dmean) / n - (x - mean) (c r^2 s2 - 2 dvariance) / n */
    ca[j] = (float)((c * s1[j] - (double)dmean[j]) / n);
    cb[j] = (float)((c * r * r * s2[j] - 2.0 * (double)dvar[j]) / n);
    cc[j] = (float)c;
  }
  for (size_t i = 0; i < rows; i++) bn_grad_row(dy + i * cols, x + i * cols, mean, ca, cb, cc, dx + i * cols, cols);
  return undefined_value(env);
}

/* dx = dy (1 - y^2): tanh's derivative from its output, as core/nn.ts's tanh computes it. */
VECTOR_CLONES
static void tanh_grad_loop(const float *restrict dy, const float *restrict y, float *restrict dx, size_t n) {
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/*
 * dx = dy sigmoid(v) from the output y = softplus(v) >= 0: sigmoid(v) = 1 - exp(-y), by the
 * series y - y^2/2 + ... - y^6/720 + y^7/5040 below y = 1/4 (truncation below 2e-9 relative;
 * no cancellation for tiny y), else 1 - exp_neg(-y).
 */
VECTOR_CLONES
static void softplus_grad_loop(const float *restrict dy, const float *restrict y, float *restrict dx, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const float t = y[i];
    float p = 1.0f / 5040.0f;
    p = p * t - 1.0f / 720.0f;
    p = p * t + 1.0f / 120.0f;
    p = p * t - 1.0f / 24.0f;
    p = p * t + 1.0f / 6.0f;
    p = p * t - 0.5f;
    const float small = t + t * t * p;
    const float big = 1.0f - exp_neg(-t);
    dx[i] = dy[i] * (t < 0.25f ? small : big);
  }
}

/*
 * The body shared by biasReluGrad and biasActivationGrad: checks the lengths, then dx = dy act'
 * from the output y (act ACT_RELU, ACT_TANH or ACT_SOFTPLUS) and dbias = dx summed over the rows
 * (in float per block of SUM_BLOCK rows, then in double).
 */
static napi_value bias_grad_run(Args *a, const float *dy, size_t ldy, const float *y, size_t ly, float *dx, size_t ldx, float *db, size_t lb, int code) {
  exact_len(a, "y", ly, ldy);
  exact_len(a, "dx", ldx, ldy);
  if (!a->failed && (lb == 0 || ldy % lb != 0)) {
    char detail[160];
    snprintf(detail, sizeof detail, "must have a length (the channel count) that divides dy's %zu; got %zu", ldy, lb);
    args_error(a, 1, "dbias", detail);
  }
  if (a->failed) return NULL;
  const size_t cols = lb, rows = ldy / lb;
  float *buf = scratch_get(a, 3 * cols + 2);
  if (buf == NULL) return NULL;
  double *acc = (double *)(((uintptr_t)buf + 7) & ~(uintptr_t)7);
  float *part = (float *)(acc + cols);
  for (size_t j = 0; j < cols; j++) acc[j] = 0.0;
  for (size_t r0 = 0; r0 < rows; r0 += SUM_BLOCK) {
    const size_t r1 = r0 + SUM_BLOCK < rows ? r0 + SUM_BLOCK : rows;
    const size_t off = r0 * cols, len = (r1 - r0) * cols;
    if (code == ACT_RELU) relu_grad_loop(dy + off, y + off, dx + off, len);
    else if (code == ACT_TANH) tanh_grad_loop(dy + off, y + off, dx + off, len);
    else softplus_grad_loop(dy + off, y + off, dx + off, len);
    add_block_sums(dx, r0, r1, cols, part, acc);
  }
  for (size_t j = 0; j < cols; j++) db[j] = (float)acc[j];
  return undefined_value(a->env);
}

/*
 * biasReluGrad(dy, y, dx, dbias): the gradient of relu(x + bias) from its output y, [rows, C]
 * flattened: dx = dy * step(y) as reluGrad, and dbias[j] = the sum of column j of dx, summed as
 * sumRows does (float within blocks of 64 rows, double across them), each block while it is
 * still in cache.
 */
static napi_value js_bias_relu_grad(napi_env env, napi_callback_info info) {
  Args a;
  size_t ldy, ly, ldx, lb;
  if (!args_init(&a, env, info, "biasReluGrad", 4)) return NULL;
  const float *dy = arg_f32(&a, 0, "dy", &ldy);
  const float *y = arg_f32(&a, 1, "y", &ly);
  float *dx = arg_f32(&a, 2, "dx", &ldx);
  float *db = arg_f32(&a, 3, "dbias", &lb);
  return bias_grad_run(&a, dy, ldy, y, ly, dx, ldx, db, lb, ACT_RELU);
}

/*
 * biasActivationGrad(dy, y, dx, dbias, activation): the gradient of y = act(x + bias) from its
 * output y, for activation "tanh" (dx = dy (1 - y^2)) or "softplus" (dx = dy (1 - exp(-y))),
 * and dbias = dx summed over the rows (y viewed as [rows, C], C = dbias's length), in double
 * per column as biasReluGrad does.
 */
static napi_value js_bias_activation_grad(napi_env env, napi_callback_info info) {
  Args a;
  size_t ldy, ly, ldx, lb;
  char act[16] = {0};
  size_t act_len = 0;
  if (!args_init(&a, env, info, "biasActivationGrad", 5)) return NULL;
  const float *dy = arg_f32(&a, 0, "dy", &ldy);
  const float *y = arg_f32(&a, 1, "y", &ly);
  float *dx = arg_f32(&a, 2, "dx", &ldx);
  float *db = arg_f32(&a, 3, "dbias", &lb);
  if (!a.failed && napi_get_value_string_utf8(env, a.argv[4], act, sizeof act, &act_len) != napi_ok) {
    args_error(&a, 0, "activation", "must be a string");
  }
  const int code = strcmp(act, "tanh") == 0 ? ACT_TANH : strcmp(act, "softplus") == 0 ? ACT_SOFTPLUS : -1;
  if (!a.failed && code < 0) {
    char detail[96];
    snprintf(detail, sizeof detail, "must be \"tanh\" or \"softplus\"; got \"%s\"", act);
    args_error(&a, 1, "activation", detail);
  }
  return bias_grad_run(&a, dy, ldy, y, ly, dx, ldx, db, lb, code);
}

/* ---------------------------------------------------------------- Bernoulli log-density */

/* terms[c] = x l - softplus(l), softplus(l) = max(l, 0) + log1p(exp(-|l|)). */
VECTOR_CLONES
static void bernoulli_terms(const float *restrict x, const float *restrict l, float *restrict terms, size_t n) {
  for (size_t c = 0; c < n; c++) {
    const float li = l[c];
    const float a = li < 0.0f ? -li : li;
    const float softplus = (li > 0.0f ? li : 0.0f) + log1p_unit(exp_neg(-a));
    terms[c] = x[c] * li - softplus;
  }
}

/* g[c] = d (x - sigmoid(l)), the sigmoid from exp(-|l|) (no overflow). */
VECTOR_CLONES
static void bernoulli_grad_row(float d, const float *restrict x, const float *restrict l, float *restrict g, size_t n) {
  for (size_t c = 0; c < n; c++) {
    const float li = l[c];
    const float a = li < 0.0f ? -li : li;
    const float e = exp_neg(-a);
    const float sig = (li >= 0.0f ? 1.0f : e) / (1.0f + e);
    g[c] = d * (x[c] - sig);
  }
}

/* Sum of n floats in double, eight running sums. */
static double sum_f64(const float *x, size_t n) {
  double acc[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int u = 0; u < 8; u++) acc[u] += (double)x[i + u];
  double total = 0.0;
  for (int u = 0; u < 8; u++) total += acc[u];
  for (; i < n; i++) total += (double)x[i];
  return total;
}

/*
 * bernoulliLogProb(x, logits, out, rows, cols): out[r] = sum_c x l - softplus(l) over a row of
 * [rows, cols] (x, l = logits): the formula of core/math.ts bernoulliLogProb in one pass instead
 * of eight tfjs kernels. Each term is computed in float32 and the row is summed in double, then
 * rounded once.
 */
static napi_value js_bernoulli_log_prob(napi_env env, napi_callback_info info) {
  Args a;
  RowPair rp;
  if (!args_init(&a, env, info, "bernoulliLogProb", 5) || !row_pair_args(&a, "x", "logits", &rp)) return NULL;
  const float *x = rp.p, *l = rp.q;
  float *out = rp.out;
  const long rows = rp.rows, cols = rp.cols;
  float *terms = scratch_get(&a, (size_t)cols + 1);
  if (terms == NULL) return NULL;
  for (long r = 0; r < rows; r++) {
    const size_t base = (size_t)r * (size_t)cols;
    bernoulli_terms(x + base, l + base, terms, (size_t)cols);
    out[r] = (float)sum_f64(terms, (size_t)cols);
  }
  return undefined_value(env);
}

/*
 * bernoulliLogProbGrad(dy, x, logits, dlogits, rows, cols): the gradient of bernoulliLogProb with
 * respect to the logits, dlogits[r, c] = dy[r] (x[r, c] - sigmoid(l[r, c])).
 */
static napi_value js_bernoulli_log_prob_grad(napi_env env, napi_callback_info info) {
  Args a;
  size_t ldy, lx, ll, lg;
  if (!args_init(&a, env, info, "bernoulliLogProbGrad", 6)) return NULL;
  const float *dy = arg_f32(&a, 0, "dy", &ldy);
  const float *x = arg_f32(&a, 1, "x", &lx);
  const float *l = arg_f32(&a, 2, "logits", &ll);
  float *g = arg_f32(&a, 3, "dlogits", &lg);
  long rows = arg_int(&a, 4, "rows", 0);
  long cols = arg_int(&a, 5, "cols", 0);
  exact_len(&a, "dy", ldy, (size_t)rows);
  exact_len(&a, "x", lx, (size_t)rows * (size_t)cols);
  exact_len(&a, "logits", ll, (size_t)rows * (size_t)cols);
  exact_len(&a, "dlogits", lg, (size_t)rows * (size_t)cols);
  if (a.failed) return NULL;
  for (long r = 0; r < rows; r++) {
    const size_t base = (size_t)r * (size_t)cols;
    bernoulli_grad_row(dy[r], x + base, l + base, g + base, (size_t)cols);
  }
  return undefined_value(env);
}

/*
 * sumSquares(x): sum of x[i]^2 in double (the squared global norm of the gradients, one array at
 * a time).
 */
VECTOR_CLONES
/* acc[u] += x[i + u]^2 in double over the whole groups of eight in x[0, n); returns how many floats that took. */
static size_t sum_squares_groups(double acc[8], const float *x, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int u = 0; u < 8; u++) acc[u] += (double)x[i + u] * (double)x[i + u];
  return i;
}

/* The eight running sums added up, then the squares of the last floats x[i, n) (fewer than eight). */
static double sum_squares_total(const double acc[8], const float *x, size_t i, size_t n) {
  double total = 0.0;
  for (int u = 0; u < 8; u++) total += acc[u];
  for (; i < n; i++) total += (double)x[i] * (double)x[i];
  return total;
}

static double sum_squares(const float *x, size_t n) {
  double acc[8] = {0};
  return sum_squares_total(acc, x, sum_squares_groups(acc, x, n), n);
}

static napi_value js_sum_squares(napi_env env, napi_callback_info info) {
  Args a;
  size_t lx;
  napi_value out;
  if (!args_init(&a, env, info, "sumSquares", 1)) return NULL;
  const float *x = arg_f32(&a, 0, "x", &lx);
  if (a.failed) return NULL;
  napi_create_double(env, sum_squares(x, lx), &out);
  return out;
}

/* ---------------------------------------------------------------- Adam */

/*
 * The element loop of adamUpdate, kept apart so that it is compiled for AVX-512 and AVX2 as
 * well (VECTOR_CLONES): sqrt and division are correctly rounded in every SIMD width, so each
 * clone gives the same bits. The arrays never overlap (checked by the caller), hence restrict.
 */
VECTOR_CLONES
static void adam_loop(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                      float b1, float c1, float b2, float c2, float ss, float bc, float ep, float fwd) {
  if (fwd > 0) {
    for (size_t i = 0; i < n; i++) {
      const float gi = g[i] + p[i] * fwd;
      const float mi = m[i] * b1 + gi * c1;
      const float vi = v[i] * b2 + (gi * gi) * c2;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] - (mi / (sqrtf(vi) / bc + ep)) * ss;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      const float gi = g[i];
      const float mi = m[i] * b1 + gi * c1;
      const float vi = v[i] * b2 + (gi * gi) * c2;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] - (mi / (sqrtf(vi) / bc + ep)) * ss;
    }
  }
}

/* Floats per block of the Adam pass that also sums g^2 (a multiple of 8: the sums' groups never straddle blocks). */
#define ADAM_BLOCK 8192

static int ranges_overlap(const float *a, size_t na, const float *b, size_t nb) {
  return a < b + nb && b < a + na;
}

/*
 * adamUpdate(p, g, m, v, stepSize, beta1, beta2, epsilon, sqrtBc2, weightDecay), in place on p, m, v:
 *   g' = g + weightDecay * p   (only when weightDecay > 0)
 *   m = beta1 m + (1 - beta1) g';  v = beta2 v + (1 - beta2) g'^2
 *   p = p - stepSize * m / (sqrt(v) / sqrtBc2 + epsilon)
 * with stepSize = lr / (1 - beta1^t) and sqrtBc2 = sqrt(1 - beta2^t) (PyTorch's rule). Every
 * operation is rounded to float32 in the same order as the tfjs ops of core/train/adam.ts, and
 * the build disables FMA contraction, so on equal inputs the result has the bits that code gives
 * on wasm, except where an operand or a result is denormal: this runs with FTZ/DAZ (see
 * "denormals" below) and reads or writes 0 there, while WebAssembly keeps denormals.
 * With an 11th argument true (sumSquares), returns the sum of g^2 (before weight decay) as
 * sumSquares(g) would: the gradient norm of the step at no extra pass.
 */
static napi_value js_adam_update(napi_env env, napi_callback_info info) {
  Args a;
  size_t lp, lg, lm, lv;
  if (!args_init(&a, env, info, "adamUpdate", 10)) return NULL;
  const int want_squares = a.argc > 10 ? arg_bool(&a, 10, "sumSquares") : 0;
  float *p = arg_f32(&a, 0, "p", &lp);
  const float *g = arg_f32(&a, 1, "g", &lg);
  float *m = arg_f32(&a, 2, "m", &lm);
  float *v = arg_f32(&a, 3, "v", &lv);
  const double step_size = arg_num(&a, 4, "stepSize");
  const double beta1 = arg_num(&a, 5, "beta1");
  const double beta2 = arg_num(&a, 6, "beta2");
  const double eps = arg_num(&a, 7, "epsilon");
  const double sqrt_bc2 = arg_num(&a, 8, "sqrtBc2");
  const double wd = arg_num(&a, 9, "weightDecay");
  exact_len(&a, "g", lg, lp);
  exact_len(&a, "m", lm, lp);
  exact_len(&a, "v", lv, lp);
  if (a.failed) return NULL;
  /* The scalars as tfjs makes them: computed in double, then stored as float32 tensors. */
  const float b1 = (float)beta1, c1 = (float)(1.0 - beta1);
  const float b2 = (float)beta2, c2 = (float)(1.0 - beta2);
  const float ss = (float)step_size, bc = (float)sqrt_bc2, ep = (float)eps, fwd = (float)wd;
  if (ranges_overlap(p, lp, g, lg) || ranges_overlap(p, lp, m, lm) || ranges_overlap(p, lp, v, lv) ||
      ranges_overlap(g, lg, m, lm) || ranges_overlap(g, lg, v, lv) || ranges_overlap(m, lm, v, lv)) {
    napi_throw_range_error(env, NULL, "vaelab_native.adamUpdate: p, g, m and v must not share memory");
    return NULL;
  }
  if (!want_squares) {
    adam_loop(p, g, m, v, lp, b1, c1, b2, c2, ss, bc, ep, fwd);
    return undefined_value(env);
  }
  /*
   * With sumSquares: also the sum of g^2 (as sumSquares computes it, the same bits), block by
   * block right after each block's update, while g is still in cache: the gradient norm without
   * a pass of its own.
   */
  double acc[8] = {0};
  size_t done = 0;
  for (size_t i0 = 0; i0 < lp; i0 += ADAM_BLOCK) {
    const size_t n = lp - i0 < ADAM_BLOCK ? lp - i0 : ADAM_BLOCK;
    adam_loop(p + i0, g + i0, m + i0, v + i0, n, b1, c1, b2, c2, ss, bc, ep, fwd);
    done = i0 + sum_squares_groups(acc, g + i0, n);
  }
  napi_value out;
  napi_create_double(env, sum_squares_total(acc, g, done, lp), &out);
  return out;
}

/* ---------------------------------------------------------------- threads and info */

/* setConvDirect(on): whether convolutions may take the direct kernels; returns the previous setting. */
static napi_value js_set_conv_direct(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, "setConvDirect", 1)) return NULL;
  const int on = arg_bool(&a, 0, "on");
  if (a.failed) return NULL;
  napi_value prev;
  napi_get_boolean(env, direct_enabled != 0, &prev);
  direct_enabled = on;
  return prev;
}

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, "setThreads", 1)) return NULL;
  long n = arg_int(&a, 0, "n", 1);
  if (a.failed) return NULL;
  openblas_set_num_threads((int)n);
  return undefined_value(env);
}

static napi_value js_get_threads(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  napi_create_int32(env, openblas_get_num_threads(), &out);
  return out;
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value s;
  napi_create_string_utf8(env, value != NULL ? value : "", NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, obj, key, s);
}

static void set_int(napi_env env, napi_value obj, const char *key, int value) {
  napi_value n;
  napi_create_int32(env, value, &n);
  napi_set_named_property(env, obj, key, n);
}

/* info(): { config, coreName, parallel: 0 sequential | 1 pthreads | 2 OpenMP, threads, chunkFloats }. */
static napi_value js_info(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  napi_create_object(env, &out);
  set_string(env, out, "config", openblas_get_config());
  set_string(env, out, "coreName", openblas_get_corename());
  set_int(env, out, "parallel", openblas_get_parallel());
  set_int(env, out, "threads", openblas_get_num_threads());
  set_int(env, out, "chunkFloats", (int)chunk_floats);
  return out;
}

/* ---------------------------------------------------------------- denormals */

/*
 * Every compute entry point runs with flush-to-zero and denormals-are-zero set in MXCSR, and
 * restores the caller's mode on return (JavaScript and wasm code keep IEEE semantics). Why:
 * Adam's moments of weights whose gradient is almost always zero (MNIST's border pixels) decay
 * geometrically into the denormal range after ~800 steps, and x86 cores take a micro-code assist
 * on every denormal operand: measured here, an MLP VAE step went from 20 to 36 ms by step 1000.
 * Values below 1.2e-38 become 0. So the pack's results are not WebAssembly's bit for bit (which
 * keeps denormals; BLAS's summation order differs from XNNPACK's at every step anyway): the same
 * run on the pack and on pure wasm drifts apart, and only one path on one machine with one seed
 * repeats its numbers bit for bit. Measured over 10 epochs of experiments/vae-mnist.yaml
 * (bench/README.md, 2026-11-28): the losses of the two paths part at step 2 (1e-7, summation
 * order) and the gap grows with training, not at the first denormal; epoch losses stay within
 * 7e-4 relative of each other, the final weights differ by up to 49% (relative L2 of a layer).
 * With more than one OpenBLAS thread, the worker threads keep their own mode.
 */
#if defined(__x86_64__) || defined(__i386__)
static inline unsigned int ftz_enter(void) {
  unsigned int old = _mm_getcsr();
  _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
  return old;
}
static inline void ftz_leave(unsigned int old) { _mm_setcsr(old); }
#else
static inline unsigned int ftz_enter(void) { return 0; }
static inline void ftz_leave(unsigned int old) { (void)old; }
#endif

#define FTZ_ENTRY(name)                                                        \
  static napi_value name##_ftz(napi_env env, napi_callback_info info) {        \
    unsigned int old = ftz_enter();                                            \
    napi_value result = name(env, info);                                       \
    ftz_leave(old);                                                            \
    return result;                                                             \
  }

FTZ_ENTRY(js_sgemm)
FTZ_ENTRY(js_sgemm_batched)
FTZ_ENTRY(js_bias_activation)
FTZ_ENTRY(js_bias_activation_grad)
FTZ_ENTRY(js_sum_rows)
FTZ_ENTRY(js_conv2d)
FTZ_ENTRY(js_conv2d_backprop_filter)
FTZ_ENTRY(js_conv2d_backprop_input)
FTZ_ENTRY(js_adam_update)
FTZ_ENTRY(js_bernoulli_log_prob)
FTZ_ENTRY(js_bernoulli_log_prob_grad)
FTZ_ENTRY(js_sum_squares)
FTZ_ENTRY(js_relu)
FTZ_ENTRY(js_kl_std_normal)
FTZ_ENTRY(js_kl_std_normal_grad)
FTZ_ENTRY(js_bias_add)
FTZ_ENTRY(js_bias_relu)
FTZ_ENTRY(js_relu_grad)
FTZ_ENTRY(js_bias_relu_grad)
FTZ_ENTRY(js_reparam)
FTZ_ENTRY(js_reparam_grad)
FTZ_ENTRY(js_reparam_log_prob)
FTZ_ENTRY(js_leaky_relu)
FTZ_ENTRY(js_leaky_relu_grad)
FTZ_ENTRY(js_batch_norm)
FTZ_ENTRY(js_batch_norm_grad)

/* ---------------------------------------------------------------- module */

static void free_instance(napi_env env, void *data, void *hint) {
  Instance *inst = (Instance *)data;
  (void)env;
  (void)hint;
  free(inst->scratch);
  free(inst);
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"sgemm", js_sgemm_ftz},
      {"sgemmBatched", js_sgemm_batched_ftz},
      {"biasActivation", js_bias_activation_ftz},
      {"biasActivationGrad", js_bias_activation_grad_ftz},
      {"sumRows", js_sum_rows_ftz},
      {"conv2d", js_conv2d_ftz},
      {"conv2dBackpropFilter", js_conv2d_backprop_filter_ftz},
      {"conv2dBackpropInput", js_conv2d_backprop_input_ftz},
      {"adamUpdate", js_adam_update_ftz},
      {"bernoulliLogProb", js_bernoulli_log_prob_ftz},
      {"bernoulliLogProbGrad", js_bernoulli_log_prob_grad_ftz},
      {"sumSquares", js_sum_squares_ftz},
      {"relu", js_relu_ftz},
      {"klStdNormal", js_kl_std_normal_ftz},
      {"klStdNormalGrad", js_kl_std_normal_grad_ftz},
      {"biasAdd", js_bias_add_ftz},
      {"biasRelu", js_bias_relu_ftz},
      {"reluGrad", js_relu_grad_ftz},
      {"biasReluGrad", js_bias_relu_grad_ftz},
      {"reparam", js_reparam_ftz},
      {"reparamGrad", js_reparam_grad_ftz},
      {"reparamLogProb", js_reparam_log_prob_ftz},
      {"leakyRelu", js_leaky_relu_ftz},
      {"leakyReluGrad", js_leaky_relu_grad_ftz},
      {"batchNorm", js_batch_norm_ftz},
      {"batchNormGrad", js_batch_norm_grad_ftz},
      {"setConvDirect", js_set_conv_direct},
      {"setThreads", js_set_threads},
      {"getThreads", js_get_threads},
      {"info", js_info},
  };
  const char *chunk = getenv("VAELAB_CONV_CHUNK");
  if (chunk != NULL) {
    long n = strtol(chunk, NULL, 10);
    if (n >= 1024) chunk_floats = (size_t)n;
  }
  /* One BLAS thread unless VAELAB_THREADS says otherwise: we run one process per core. */
  const char *threads = getenv("VAELAB_THREADS");
  long t = threads != NULL ? strtol(threads, NULL, 10) : 0;
  openblas_set_num_threads(t >= 1 ? (int)t : 1);
  direct_pick_isa();
  const char *direct = getenv("VAELAB_CONV_DIRECT");
  if (direct != NULL && strcmp(direct, "0") == 0) direct_enabled = 0;
  Instance *inst = (Instance *)calloc(1, sizeof(Instance));
  if (inst == NULL || napi_set_instance_data(env, inst, free_instance, NULL) != napi_ok) {
    free(inst);
    napi_throw_error(env, NULL, "vaelab_native: cannot allocate its per-environment state");
    return NULL;
  }
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) {
      return NULL;
    }
  }
  return exports;
}
