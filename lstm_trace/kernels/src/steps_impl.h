/* The kernels, written once for REAL (float or double); included twice by steps.c.
 * SFX(name) gives each function its dtype suffix, TANH is the tanh used. */

typedef void (*SFX(gemm32_fn))(int, int, int, int, int, int, REAL, const REAL *, int,
                               const REAL *, int, REAL, REAL *, int);
typedef void (*SFX(gemm64_fn))(int, int, int, int64_t, int64_t, int64_t, REAL, const REAL *,
                               int64_t, const REAL *, int64_t, REAL, REAL *, int64_t);

/* C (M, N) = A (M, K) B (K, N), row-major with leading dimensions (the BLAS numpy uses). */
static void SFX(gemm)(const kernel_args *a, int64_t M, int64_t N, int64_t K, const REAL *A,
                      int64_t lda, const REAL *B, int64_t ldb, REAL *C, int64_t ldc) {
    if (a->gemm_ilp64)
        ((SFX(gemm64_fn))a->gemm)(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, M, N, K, 1,
                                  A, lda, B, ldb, 0, C, ldc);
    else
        ((SFX(gemm32_fn))a->gemm)(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, (int)M,
                                  (int)N, (int)K, 1, A, (int)lda, B, (int)ldb, 0, C, (int)ldc);
}

/* dst[k] = act(src[k]), as lstm_trace/activations.py defines each (dst may be src).
 * Cloned per instruction set (picked at load time): the wider the vectors, the faster. */
VECTOR_CLONES static void SFX(activate)(int code, const REAL *restrict src, REAL *dst, int64_t n) {
    const REAL half = (REAL)0.5, zero = 0, one = 1;
    int64_t k;
    switch (code) {
    case ACT_TANH:
        for (k = 0; k < n; k++) dst[k] = TANH(src[k]);
        break;
    case ACT_SIGMOID: /* 0.5 tanh(0.5 x) + 0.5 */
        for (k = 0; k < n; k++) dst[k] = TANH(src[k] * half) * half + half;
        break;
    case ACT_HARD_SIGMOID: /* clip(x / 6 + 0.5, 0, 1) */
        for (k = 0; k < n; k++) {
            REAL v = src[k] / (REAL)6 + half;
            dst[k] = v < zero ? zero : (v > one ? one : v);
        }
        break;
    case ACT_HARD_SIGMOID_KERAS2: /* clip(0.2 x + 0.5, 0, 1) */
        for (k = 0; k < n; k++) {
            REAL v = src[k] * (REAL)0.2 + half;
            dst[k] = v < zero ? zero : (v > one ? one : v);
        }
        break;
    case ACT_RELU:
        for (k = 0; k < n; k++) dst[k] = src[k] >= zero || src[k] != src[k] ? src[k] : zero; /* np.maximum */
        break;
    default: /* linear */
        if (dst != src) memmove(dst, src, (size_t)n * sizeof(REAL));
    }
}

static void SFX(clip)(REAL *v, int64_t n, double bound) {
    const REAL hi = (REAL)bound, lo = -(REAL)bound;
    for (int64_t k = 0; k < n; k++) v[k] = v[k] < lo ? lo : (v[k] > hi ? hi : v[k]);
}

static void SFX(copy_finals)(const REAL *src, int64_t ld, REAL *dst, int64_t batch, int64_t width) {
    for (int64_t b = 0; b < batch; b++) memcpy(dst + b * width, src + b * ld, (size_t)width * sizeof(REAL));
}

/* The state a step's row pass reads: step t, the previous states, the step's products. */
typedef struct {
    const kernel_args *a;
    int64_t t, h_ld, c_ld;
    const REAL *h_prev, *c_prev;
    REAL *hu;   /* h U of this step, (batch, width) */
    REAL *m;    /* LSTM: o ⊙ φ(c') before the projection; GRU: r ⊙ h, then (r ⊙ h) U_h */
    REAL *hh;   /* GRU (not reset_after): (r ⊙ h) U_h */
} SFX(step_ctx);

/* x[k] + b[k] of one row of x W, as the NumPy reference adds them ((x W + b) + forget bias
 * on the f block), before the row meets h U: the same additions in the same order, so the
 * bias costs no pass of its own over x W. */
static inline REAL SFX(with_bias)(const kernel_args *a, const REAL *x, int64_t k, int64_t f0, int64_t f1) {
    const REAL *b = a->bias;
    REAL v = b ? x[k] + b[k] : x[k];
    if (a->has_forget_bias && k >= f0 && k < f1) v += (REAL)a->forget_bias;
    return v;
}

typedef int (*SFX(sequence_fn))(const kernel_args *);

typedef struct {
    SFX(sequence_fn) fn;
    kernel_args args;
    int64_t gate_width;
    int rc;
} SFX(block_job);

/* x W for every step of the block's rows (one product of batch * steps rows), then fn. */
static void *SFX(block_thread)(void *p) {
    SFX(block_job) *j = p;
    const kernel_args *a = &j->args;
    const int64_t F = a->features, G = j->gate_width;
    SFX(gemm)(a, a->batch * a->steps, G, F, a->x, F, a->W, G, (REAL *)a->xw, G);
    j->rc = j->fn(a);
    return NULL;
}

/* fn over the whole batch, or over blocks of batch rows, one thread each: each row is its
 * own recurrence, so a block is a smaller batch with every pointer moved to its first row.
 * `widths[q]`: row width of out[q] (the outputs the kernel writes itself); `gate_width`:
 * of x W, which each block computes for its own rows first (so a block's products all run
 * on its own thread, and its pages are first touched there). Threads only for work of a->split_min gate values or more. */
static int SFX(over_row_blocks)(SFX(sequence_fn) fn, const kernel_args *a, const int64_t widths[6],
                                int64_t gate_width) {
    const int64_t B = a->batch, T = a->steps;
    int threads = a->threads;
    if (B * T * gate_width < a->split_min) threads = 1;
    if (threads > B) threads = (int)B;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads <= 1) {
        SFX(block_job) whole = {fn, *a, gate_width, 0};
        SFX(block_thread)(&whole);
        return whole.rc;
    }
    pthread_t tid[MAX_THREADS];
    SFX(block_job) jobs[MAX_THREADS];
    int started[MAX_THREADS];
    for (int k = 0; k < threads; k++) {
        const int64_t b0 = B * k / threads, b1 = B * (k + 1) / threads;
        kernel_args s = *a;
        s.batch = b1 - b0;
        s.threads = 1;
        s.x = (const REAL *)a->x + b0 * T * a->features;
        s.xw = (const REAL *)a->xw + b0 * T * gate_width;
        if (a->mask) s.mask = a->mask + b0 * T;
        s.h0 = (const REAL *)a->h0 + b0 * a->state;
        s.h_final = (REAL *)a->h_final + b0 * a->state;
        if (a->c0) s.c0 = (const REAL *)a->c0 + b0 * a->units;
        if (a->c_final) s.c_final = (REAL *)a->c_final + b0 * a->units;
        for (int q = 0; q < 6; q++)
            if (a->out[q]) s.out[q] = (REAL *)a->out[q] + b0 * T * widths[q];
        jobs[k] = (SFX(block_job)){fn, s, gate_width, 0};
    }
    /* each block's products on one core: BLAS threads would only compete with the blocks */
    set_threads_fn set_threads = (set_threads_fn)a->blas_set_threads;
    const int blas_threads = set_threads ? set_threads(1) : 0;
    for (int k = 1; k < threads; k++)
        started[k] = pthread_create(&tid[k], NULL, SFX(block_thread), &jobs[k]) == 0;
    SFX(block_thread)(&jobs[0]);
    int rc = jobs[0].rc;
    for (int k = 1; k < threads; k++) {
        if (started[k]) pthread_join(tid[k], NULL);
        else SFX(block_thread)(&jobs[k]); /* no thread: do its block here */
        if (jobs[k].rc) rc = jobs[k].rc;
    }
    if (set_threads) set_threads(blas_threads);
    return rc;
}

#define STEP_INDEX(n) (a->reverse ? T - 1 - (n) : (n))
#define USED(b, t) (!a->mask || a->mask[(b) * T + (t)])
#define ZERO(p, n) memset((p), 0, (size_t)(n) * sizeof(REAL))
#define COPY(dst, src, n) memcpy((dst), (src), (size_t)(n) * sizeof(REAL))

/* LSTM rows of one step: gates, c' and o ⊙ φ(c') (into h, or into m to be projected). */
VECTOR_CLONES static void SFX(lstm_rows)(const SFX(step_ctx) *s, int64_t b0, int64_t b1, REAL *row) {
    const kernel_args *a = s->a;
    const int64_t T = a->steps, u = a->units, S = a->state, G = 4 * u, t = s->t;
    const REAL *xw = a->xw, *p_i = a->peep_i, *p_f = a->peep_f, *p_o = a->peep_o;
    REAL *cs = a->out[4], *hs = a->out[5];
    for (int64_t b = b0; b < b1; b++) {
        const REAL *hp = s->h_prev + b * s->h_ld, *cp = s->c_prev + b * s->c_ld;
        const int64_t o = (b * T + t) * u;
        REAL *c = cs + o, *h = hs + (b * T + t) * S;
        /* i, f, g, o overwrite this step's x W + b in place, once it is read into row */
        REAL *gi = (REAL *)xw + (b * T + t) * G, *gf = gi + u, *gg = gi + 2 * u, *go = gi + 3 * u;
        if (!USED(b, t)) { /* the states carry over; the gates are 0 */
            ZERO(gi, G);
            COPY(c, cp, u);
            if (!a->P) COPY(h, hp, S);
            continue;
        }
        const REAL *x = gi, *z = s->hu + b * G;
        if (a->bias || a->has_forget_bias)
            for (int64_t k = 0; k < G; k++) row[k] = z[k] + SFX(with_bias)(a, x, k, u, 2 * u);
        else
            for (int64_t k = 0; k < G; k++) row[k] = z[k] + x[k];
        if (p_i) for (int64_t k = 0; k < u; k++) row[k] += p_i[k] * cp[k];
        if (p_f) for (int64_t k = 0; k < u; k++) row[u + k] += p_f[k] * cp[k];
        SFX(activate)(a->recurrent_activation, row, gi, 2 * u); /* i and f: adjacent */
        SFX(activate)(a->activation, row + 2 * u, gg, u);
        {
            const REAL *restrict i_ = gi, *restrict f_ = gf, *restrict g_ = gg;
            for (int64_t k = 0; k < u; k++) c[k] = f_[k] * cp[k] + i_[k] * g_[k];
        }
        if (a->has_cell_clip) SFX(clip)(c, u, a->cell_clip);
        if (p_o) for (int64_t k = 0; k < u; k++) row[3 * u + k] += p_o[k] * c[k];
        SFX(activate)(a->recurrent_activation, row + 3 * u, go, u);
        REAL *mo = a->P ? s->m + b * u : h; /* o ⊙ φ(c'), projected after this pass when P */
        SFX(activate)(a->activation, c, mo, u);
        const REAL *restrict o_ = go;
        for (int64_t k = 0; k < u; k++) mo[k] = o_[k] * mo[k];
    }
}

/* LSTM over one block of rows (see lstm_sequence). */
static int SFX(lstm_rows_sequence)(const kernel_args *a) {
    const int64_t B = a->batch, T = a->steps, u = a->units, S = a->state, G = 4 * u;
    REAL *cs = a->out[4], *hs = a->out[5];
    REAL *hu = malloc((size_t)(B * G + G) * sizeof(REAL));
    REAL *m = a->P ? calloc((size_t)(B * u), sizeof(REAL)) : NULL;
    if (!hu || (a->P && !m)) { free(hu); free(m); return -1; }
    SFX(step_ctx) s = {a, 0, S, u, a->h0, a->c0, hu, m, NULL};
    for (int64_t n = 0; n < T; n++) {
        const int64_t t = s.t = STEP_INDEX(n);
        SFX(gemm)(a, B, G, S, s.h_prev, s.h_ld, a->U, G, hu, G);
        SFX(lstm_rows)(&s, 0, B, hu + B * G);
        if (a->P) {
            SFX(gemm)(a, B, S, u, m, u, a->P, S, hs + t * S, T * S);
            for (int64_t b = 0; b < B; b++) {
                REAL *h = hs + (b * T + t) * S;
                if (!USED(b, t)) COPY(h, s.h_prev + b * s.h_ld, S);
                else if (a->has_proj_clip) SFX(clip)(h, S, a->proj_clip);
            }
        }
        s.h_prev = hs + t * S; s.h_ld = T * S;
        s.c_prev = cs + t * u; s.c_ld = T * u;
    }
    SFX(copy_finals)(s.h_prev, s.h_ld, a->h_final, B, S);
    SFX(copy_finals)(s.c_prev, s.c_ld, a->c_final, B, u);
    free(hu); free(m);
    return 0;
}

/* LSTM: i, f, g, o, c, h (lstm_trace.network.Cell); peepholes, projection, clips, masks. */
int SFX(lstm_sequence)(const kernel_args *a) {
    const int64_t widths[6] = {0, 0, 0, 0, a->units, a->state};
    return SFX(over_row_blocks)(SFX(lstm_rows_sequence), a, widths, 4 * a->units);
}

/* GRU rows of one step. reset_after: z, r, h̃, h' at once. Otherwise this is the first
 * half (z, r and r ⊙ h into m for the product with U_h); gru_rows_candidate the second. */
VECTOR_CLONES static void SFX(gru_rows)(const SFX(step_ctx) *s, int64_t b0, int64_t b1, REAL *row) {
    const kernel_args *a = s->a;
    const int64_t T = a->steps, u = a->units, G = 3 * u, t = s->t;
    const int after = a->reset_after;
    const REAL *xw = a->xw, *rb = a->recurrent_bias;
    REAL *hs = a->out[3];
    for (int64_t b = b0; b < b1; b++) {
        const REAL *hp = s->h_prev + b * s->h_ld;
        const int64_t o = (b * T + t) * u;
        REAL *h = hs + o;
        /* z, r, h̃ overwrite this step's x W + b in place, each part once it is read */
        REAL *gz = (REAL *)xw + (b * T + t) * G, *gr = gz + u, *gg = gz + 2 * u;
        if (!USED(b, t)) {
            ZERO(gz, G);
            COPY(h, hp, u);
            continue;
        }
        const REAL *x = gz;
        REAL *z = s->hu + b * G;
        const int64_t width = after ? G : 2 * u;
        if (rb) for (int64_t k = 0; k < width; k++) z[k] += rb[k];
        for (int64_t k = 0; k < 2 * u; k++) row[k] = SFX(with_bias)(a, x, k, 0, 0) + z[k];
        SFX(activate)(a->recurrent_activation, row, gz, 2 * u); /* z and r: adjacent */
        const REAL *restrict r_ = gr;
        if (!after) {
            for (int64_t k = 0; k < u; k++) s->m[b * u + k] = r_[k] * hp[k];
            continue;
        }
        for (int64_t k = 0; k < u; k++)
            row[2 * u + k] = SFX(with_bias)(a, x, 2 * u + k, 0, 0) + r_[k] * z[2 * u + k];
        SFX(activate)(a->activation, row + 2 * u, gg, u);
        const REAL *restrict z_ = gz, *restrict g_ = gg;
        for (int64_t k = 0; k < u; k++) h[k] = z_[k] * hp[k] + (1 - z_[k]) * g_[k];
    }
}

VECTOR_CLONES static void SFX(gru_rows_candidate)(const SFX(step_ctx) *s, int64_t b0, int64_t b1, REAL *row) {
    const kernel_args *a = s->a;
    const int64_t T = a->steps, u = a->units, G = 3 * u, t = s->t;
    const REAL *xw = a->xw, *rb = a->recurrent_bias;
    REAL *hs = a->out[3];
    for (int64_t b = b0; b < b1; b++) {
        if (!USED(b, t)) continue;
        const REAL *hp = s->h_prev + b * s->h_ld, *x = (const REAL *)xw + (b * T + t) * G;
        const int64_t o = (b * T + t) * u;
        REAL *q = s->hh + b * u, *h = hs + o;
        REAL *gz = (REAL *)xw + (b * T + t) * G, *gg = gz + 2 * u;
        if (rb) for (int64_t k = 0; k < u; k++) q[k] += rb[2 * u + k];
        for (int64_t k = 0; k < u; k++) row[k] = SFX(with_bias)(a, x, 2 * u + k, 0, 0) + q[k];
        SFX(activate)(a->activation, row, gg, u);
        const REAL *restrict z_ = gz, *restrict g_ = gg;
        for (int64_t k = 0; k < u; k++) h[k] = z_[k] * hp[k] + (1 - z_[k]) * g_[k];
    }
}

/* GRU over one block of rows (see gru_sequence). */
static int SFX(gru_rows_sequence)(const kernel_args *a) {
    const int64_t B = a->batch, T = a->steps, u = a->units, G = 3 * u;
    const int after = a->reset_after;
    REAL *hs = a->out[3];
    REAL *hu = malloc((size_t)(B * G + G + (after ? 0 : 2 * B * u)) * sizeof(REAL));
    if (!hu) return -1;
    REAL *rows = hu + B * G, *m = rows + G, *hh = m + B * u;
    if (!after) ZERO(m, B * u);
    SFX(step_ctx) s = {a, 0, u, 0, a->h0, NULL, hu, after ? NULL : m, after ? NULL : hh};
    for (int64_t n = 0; n < T; n++) {
        const int64_t t = s.t = STEP_INDEX(n);
        /* reset_after: h U for all three gates; else h U_zr now and (r ⊙ h) U_h below */
        SFX(gemm)(a, B, after ? G : 2 * u, u, s.h_prev, s.h_ld, a->U, G, hu, G);
        SFX(gru_rows)(&s, 0, B, rows);
        if (!after) {
            SFX(gemm)(a, B, u, u, m, u, (const REAL *)a->U + 2 * u, G, hh, u);
            SFX(gru_rows_candidate)(&s, 0, B, rows);
        }
        s.h_prev = hs + t * u; s.h_ld = T * u;
    }
    SFX(copy_finals)(s.h_prev, s.h_ld, a->h_final, B, u);
    free(hu);
    return 0;
}

/* GRU: z, r, h̃, h, both reset variants (lstm_trace.network.Cell); masks. */
int SFX(gru_sequence)(const kernel_args *a) {
    const int64_t widths[6] = {0, 0, 0, a->units, 0, 0};
    return SFX(over_row_blocks)(SFX(gru_rows_sequence), a, widths, 3 * a->units);
}

/* SimpleRNN rows of one step: h' = φ(x W + b + h U). */
VECTOR_CLONES static void SFX(simple_rnn_rows)(const SFX(step_ctx) *s, int64_t b0, int64_t b1, REAL *row) {
    const kernel_args *a = s->a;
    const int64_t T = a->steps, u = a->units, t = s->t;
    const REAL *xw = a->xw;
    REAL *hs = a->out[0];
    (void)row;
    for (int64_t b = b0; b < b1; b++) {
        const int64_t o = (b * T + t) * u;
        REAL *h = hs + o;
        if (!USED(b, t)) {
            COPY(h, s->h_prev + b * s->h_ld, u);
            continue;
        }
        const REAL *x = xw + o, *z = s->hu + b * u;
        if (a->bias)
            for (int64_t k = 0; k < u; k++) h[k] = SFX(with_bias)(a, x, k, 0, 0) + z[k];
        else
            for (int64_t k = 0; k < u; k++) h[k] = x[k] + z[k];
        SFX(activate)(a->activation, h, h, u);
    }
}

/* SimpleRNN over one block of rows (see simple_rnn_sequence). */
static int SFX(simple_rnn_rows_sequence)(const kernel_args *a) {
    const int64_t B = a->batch, T = a->steps, u = a->units;
    REAL *hs = a->out[0];
    REAL *hu = malloc((size_t)(B * u) * sizeof(REAL));
    if (!hu) return -1;
    SFX(step_ctx) s = {a, 0, u, 0, a->h0, NULL, hu, NULL, NULL};
    for (int64_t n = 0; n < T; n++) {
        const int64_t t = s.t = STEP_INDEX(n);
        SFX(gemm)(a, B, u, u, s.h_prev, s.h_ld, a->U, u, hu, u);
        SFX(simple_rnn_rows)(&s, 0, B, NULL);
        s.h_prev = hs + t * u; s.h_ld = T * u;
    }
    SFX(copy_finals)(s.h_prev, s.h_ld, a->h_final, B, u);
    free(hu);
    return 0;
}

/* SimpleRNN: h' = φ(x W + b + h U); masks. */
int SFX(simple_rnn_sequence)(const kernel_args *a) {
    const int64_t widths[6] = {a->units, 0, 0, 0, 0, 0};
    return SFX(over_row_blocks)(SFX(simple_rnn_rows_sequence), a, widths, a->units);
}

#undef STEP_INDEX
#undef USED
#undef ZERO
#undef COPY
