/* Whole-sequence step kernels for lstm-trace: LSTM, GRU and SimpleRNN.
 *
 * A plain C library (no Python API), loaded with ctypes by lstm_trace/kernels/_native.py.
 * Each kernel owns a whole sequence of one direction: per step it calls the BLAS numpy
 * uses for h U (a function pointer found at run time), then makes ONE pass over the
 * batch rows computing every gate and state and writing them straight into the
 * recorded (batch, steps, width) output arrays. Every batch row is a recurrence of its own,
 * so a big batch is cut into blocks of rows, each run start to end on a thread of its own
 * (no step-by-step synchronisation; over_row_blocks). The bias is added to x W as each row
 * is read (no pass of its own over x W). The equations and the order of every
 * floating-point operation follow the NumPy reference loops in lstm_trace/engine.py
 * (compiled with -ffp-contract=off: no fused multiply-adds the reference does not do).
 *
 * steps_impl.h holds the kernels once; it is included for float and for double.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { ACT_LINEAR = 0, ACT_TANH, ACT_SIGMOID, ACT_HARD_SIGMOID, ACT_HARD_SIGMOID_KERAS2, ACT_RELU };
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111 };

#define MAX_THREADS 8

/* Everything a kernel needs; mirrored by _native.KernelArgs (keep the two in step). */
typedef struct {
    int64_t batch, steps, units, state, features;
    int64_t split_min;          /* threads only from this many gate values (batch x steps x
                                 * gate width) on: a thread costs tens of microseconds */
    int32_t reverse, activation, recurrent_activation, reset_after;
    int32_t has_cell_clip, has_proj_clip, gemm_ilp64;
    int32_t threads;            /* threads over blocks of batch rows (1: none) */
    int32_t has_forget_bias;
    double cell_clip, proj_clip, forget_bias;
    const void *x, *W;          /* (batch, steps, features) and (features, G*units): the kernel
                                 * computes x W into xw itself (each block of rows its own) */
    const void *xw;             /* (batch, steps, G*units): x W for every step; LSTM and GRU
                                 * write their gates over it, SimpleRNN its h (out[0]) */
    const void *bias;           /* (G*units) added to x W as it is read, or NULL */
    const void *U;              /* (state, G*units) */
    const void *recurrent_bias; /* GRU (G*units) or NULL */
    const void *peep_i, *peep_f, *peep_o; /* LSTM peepholes (units) or NULL */
    const void *P;              /* LSTM projection (units, state) or NULL */
    const uint8_t *mask;        /* (batch, steps), nonzero = step used; or NULL */
    const void *h0, *c0;        /* (batch, state), (batch, units) */
    void *out[6];               /* recorded quantities in contract order, (batch, steps, width) */
    void *h_final, *c_final;    /* (batch, state), (batch, units) */
    void *gemm;                 /* cblas_?gemm of the BLAS numpy uses */
    void *blas_set_threads;     /* int f(int n): sets the BLAS's thread count for the whole
                                 * process and returns the previous one; or NULL */
} kernel_args;

typedef int (*set_threads_fn)(int);

/* float32 tanh without branches, so gcc vectorises the loops that call it.
 * |x| < 0.625: Cephes' odd polynomial; else 1 - 2 / (e^{2|x|} + 1) with a Cephes-style
 * exp (range reduction by ln 2 rounded with the 1.5 * 2^23 trick, degree-6 polynomial,
 * exponent by bit arithmetic). Against float64 tanh: at most 2 ulps (tests/test_kernels.py). */
static inline float exp_f32(float x) {
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    const float r = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln 2) */
    x = x - r * 0.693359375f;
    x = x - r * -2.12194440e-4f;
    const float z = x * x;
    const float y = (((((1.9875691500e-4f * x + 1.3981999507e-3f) * x + 8.3334519073e-3f) * x
                       + 4.1665795894e-2f) * x + 1.6666665459e-1f) * x + 5.0000001201e-1f) * z
                    + x + 1.0f;
    const int32_t bits = ((int32_t)r + 127) << 23; /* 2^r */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline float tanh_f32(float x) {
    const float a = fabsf(x);
    const float s = x * x;
    const float small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s
                          + 1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;
    const float big = copysignf(1.0f - 2.0f / (exp_f32(2.0f * a) + 1.0f), x);
    return a < 0.625f ? small : big;
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

#define REAL float
#define SFX(name) name##_f32
#define TANH tanh_f32
#include "steps_impl.h"
#undef REAL
#undef SFX
#undef TANH

#define REAL double
#define SFX(name) name##_f64
#define TANH tanh
#include "steps_impl.h"
#undef REAL
#undef SFX
#undef TANH

/* Lets the loader check it has the library it was written for. */
int lstm_trace_kernels_abi(void) { return 3; }
