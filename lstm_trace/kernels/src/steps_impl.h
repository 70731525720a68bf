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

#define STEP_INDEX(n) (a->reverse ? T - 1 - (n) : (n))
#define USED(b, t) (!a->mask || a->mask[(b) * T + (t)])

/* LSTM: i, f, g, o, c, h (lstm_trace.network.Cell); peepholes, projection, clips, masks. */
int SFX(lstm_sequence)(const kernel_args *a) {
    const int64_t B = a->batch, T = a->steps, u = a->units, S = a->state, G = 4 * u;
    const REAL *xw = a->xw, *U = a->U, *P = a->P;
    const REAL *p_i = a->peep_i, *p_f = a->peep_f, *p_o = a->peep_o;
    REAL *gi = a->out[0], *gf = a->out[1], *gg = a->out[2], *go = a->out[3];
    REAL *cs = a->out[4], *hs = a->out[5];
    REAL *hu = malloc((size_t)(B * G + G) * sizeof(REAL));
    REAL *m = P ? calloc((size_t)(B * u), sizeof(REAL)) : NULL;
    if (!hu || (P && !m)) { free(hu); free(m); return -1; }
    REAL *row = hu + B * G;
    const REAL *h_prev = a->h0, *c_prev = a->c0;
    int64_t h_ld = S, c_ld = u;
    for (int64_t n = 0; n < T; n++) {
        const int64_t t = STEP_INDEX(n);
        SFX(gemm)(a, B, G, S, h_prev, h_ld, U, G, hu, G);
        for (int64_t b = 0; b < B; b++) {
            const REAL *hp = h_prev + b * h_ld, *cp = c_prev + b * c_ld;
            const int64_t o = (b * T + t) * u;
            REAL *c = cs + o, *h = hs + (b * T + t) * S;
            if (!USED(b, t)) { /* the states carry over; the gates are 0 */
                memset(gi + o, 0, (size_t)u * sizeof(REAL));
                memset(gf + o, 0, (size_t)u * sizeof(REAL));
                memset(gg + o, 0, (size_t)u * sizeof(REAL));
                memset(go + o, 0, (size_t)u * sizeof(REAL));
                memcpy(c, cp, (size_t)u * sizeof(REAL));
                if (!P) memcpy(h, hp, (size_t)S * sizeof(REAL));
                continue;
            }
            const REAL *x = xw + (b * T + t) * G, *z = hu + b * G;
            for (int64_t k = 0; k < G; k++) row[k] = z[k] + x[k];
            if (p_i) for (int64_t k = 0; k < u; k++) row[k] += p_i[k] * cp[k];
            if (p_f) for (int64_t k = 0; k < u; k++) row[u + k] += p_f[k] * cp[k];
            SFX(activate)(a->recurrent_activation, row, gi + o, u);
            SFX(activate)(a->recurrent_activation, row + u, gf + o, u);
            SFX(activate)(a->activation, row + 2 * u, gg + o, u);
            {
                const REAL *restrict i_ = gi + o, *restrict f_ = gf + o, *restrict g_ = gg + o;
                for (int64_t k = 0; k < u; k++) c[k] = f_[k] * cp[k] + i_[k] * g_[k];
            }
            if (a->has_cell_clip) SFX(clip)(c, u, a->cell_clip);
            if (p_o) for (int64_t k = 0; k < u; k++) row[3 * u + k] += p_o[k] * c[k];
            SFX(activate)(a->recurrent_activation, row + 3 * u, go + o, u);
            REAL *mo = P ? m + b * u : h; /* o ⊙ φ(c'), projected below when P */
            SFX(activate)(a->activation, c, mo, u);
            {
                const REAL *restrict o_ = go + o;
                for (int64_t k = 0; k < u; k++) mo[k] = o_[k] * mo[k];
            }
        }
        if (P) {
            SFX(gemm)(a, B, S, u, m, u, P, S, hs + t * S, T * S);
            for (int64_t b = 0; b < B; b++) {
                REAL *h = hs + (b * T + t) * S;
                if (!USED(b, t)) memcpy(h, h_prev + b * h_ld, (size_t)S * sizeof(REAL));
                else if (a->has_proj_clip) SFX(clip)(h, S, a->proj_clip);
            }
        }
        h_prev = hs + t * S; h_ld = T * S;
        c_prev = cs + t * u; c_ld = T * u;
    }
    SFX(copy_finals)(h_prev, h_ld, a->h_final, B, S);
    SFX(copy_finals)(c_prev, c_ld, a->c_final, B, u);
    free(hu); free(m);
    return 0;
}

/* GRU: z, r, h̃, h, both reset variants (lstm_trace.network.Cell); masks. */
int SFX(gru_sequence)(const kernel_args *a) {
    const int64_t B = a->batch, T = a->steps, u = a->units, G = 3 * u;
    const REAL *xw = a->xw, *U = a->U, *rb = a->recurrent_bias;
    REAL *gz = a->out[0], *gr = a->out[1], *gg = a->out[2], *hs = a->out[3];
    const int after = a->reset_after;
    REAL *hu = malloc((size_t)(B * G + G + (after ? 0 : 2 * B * u)) * sizeof(REAL));
    if (!hu) return -1;
    REAL *row = hu + B * G, *rh = row + G, *hh = rh + B * u;
    if (!after) memset(rh, 0, (size_t)(B * u) * sizeof(REAL));
    const REAL *h_prev = a->h0;
    int64_t h_ld = u;
    for (int64_t n = 0; n < T; n++) {
        const int64_t t = STEP_INDEX(n);
        /* reset_after: h U for all three gates; else h U_zr now and (r ⊙ h) U_h below */
        SFX(gemm)(a, B, after ? G : 2 * u, u, h_prev, h_ld, U, G, hu, G);
        for (int64_t b = 0; b < B; b++) {
            const REAL *hp = h_prev + b * h_ld;
            const int64_t o = (b * T + t) * u;
            REAL *h = hs + o;
            if (!USED(b, t)) {
                memset(gz + o, 0, (size_t)u * sizeof(REAL));
                memset(gr + o, 0, (size_t)u * sizeof(REAL));
                memset(gg + o, 0, (size_t)u * sizeof(REAL));
                memcpy(h, hp, (size_t)u * sizeof(REAL));
                continue;
            }
            const REAL *x = xw + (b * T + t) * G;
            REAL *z = hu + b * G;
            const int64_t width = after ? G : 2 * u;
            if (rb) for (int64_t k = 0; k < width; k++) z[k] += rb[k];
            for (int64_t k = 0; k < 2 * u; k++) row[k] = x[k] + z[k];
            SFX(activate)(a->recurrent_activation, row, gz + o, u);
            SFX(activate)(a->recurrent_activation, row + u, gr + o, u);
            const REAL *restrict r_ = gr + o;
            if (after) {
                for (int64_t k = 0; k < u; k++) row[2 * u + k] = x[2 * u + k] + r_[k] * z[2 * u + k];
                SFX(activate)(a->activation, row + 2 * u, gg + o, u);
                const REAL *restrict z_ = gz + o, *restrict g_ = gg + o;
                for (int64_t k = 0; k < u; k++) h[k] = z_[k] * hp[k] + (1 - z_[k]) * g_[k];
            } else {
                for (int64_t k = 0; k < u; k++) rh[b * u + k] = r_[k] * hp[k];
            }
        }
        if (!after) {
            SFX(gemm)(a, B, u, u, rh, u, U + 2 * u, G, hh, u);
            for (int64_t b = 0; b < B; b++) {
                if (!USED(b, t)) continue;
                const REAL *hp = h_prev + b * h_ld, *x = xw + (b * T + t) * G;
                const int64_t o = (b * T + t) * u;
                REAL *q = hh + b * u, *h = hs + o;
                if (rb) for (int64_t k = 0; k < u; k++) q[k] += rb[2 * u + k];
                for (int64_t k = 0; k < u; k++) row[k] = x[2 * u + k] + q[k];
                SFX(activate)(a->activation, row, gg + o, u);
                const REAL *restrict z_ = gz + o, *restrict g_ = gg + o;
                for (int64_t k = 0; k < u; k++) h[k] = z_[k] * hp[k] + (1 - z_[k]) * g_[k];
            }
        }
        h_prev = hs + t * u; h_ld = T * u;
    }
    SFX(copy_finals)(h_prev, h_ld, a->h_final, B, u);
    free(hu);
    return 0;
}

/* SimpleRNN: h' = φ(x W + b + h U); masks. */
int SFX(simple_rnn_sequence)(const kernel_args *a) {
    const int64_t B = a->batch, T = a->steps, u = a->units;
    const REAL *xw = a->xw, *U = a->U;
    REAL *hs = a->out[0];
    REAL *hu = malloc((size_t)(B * u) * sizeof(REAL));
    if (!hu) return -1;
    const REAL *h_prev = a->h0;
    int64_t h_ld = u;
    for (int64_t n = 0; n < T; n++) {
        const int64_t t = STEP_INDEX(n);
        SFX(gemm)(a, B, u, u, h_prev, h_ld, U, u, hu, u);
        for (int64_t b = 0; b < B; b++) {
            const int64_t o = (b * T + t) * u;
            REAL *h = hs + o;
            if (!USED(b, t)) {
                memcpy(h, h_prev + b * h_ld, (size_t)u * sizeof(REAL));
                continue;
            }
            const REAL *x = xw + o, *z = hu + b * u;
            for (int64_t k = 0; k < u; k++) h[k] = x[k] + z[k];
            SFX(activate)(a->activation, h, h, u);
        }
        h_prev = hs + t * u; h_ld = T * u;
    }
    SFX(copy_finals)(h_prev, h_ld, a->h_final, B, u);
    free(hu);
    return 0;
}

#undef STEP_INDEX
#undef USED
