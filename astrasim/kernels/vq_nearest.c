/* Fused grouped-VQ encode: the nearest code of every (token, group) with a running minimum.
 *
 * score(t, g, k) = ||c_gk||^2 - 2 x_tg . c_gk   (||x_tg||^2 is the same for every k)
 *
 * torch computes this as a batched matmul that writes a [G, M, K] score tensor and an argmin that
 * reads it back; for narrow groups (d = 24 at G = 32) that is bound by memory, not FLOPs. Here a
 * tile of TB tokens x KT codes is accumulated in registers over the d coordinates and folded
 * straight into a per-lane running minimum, so no score ever reaches memory.
 *
 * Ties go to the smallest index, as torch.argmin. Written with GCC vector extensions, so it
 * compiles to AVX2/AVX-512/NEON or plain scalar code, whatever the machine has (-march=native).
 *
 * Layouts (row-major, float32): x [M, G, d]; cbt [G, K / KT, d, KT] (each tile of KT codes
 * transposed and contiguous: rows of a [d, K] layout are 4 KB apart and alias in the L1 cache);
 * norms [G, K]; out [M, G] int64; K a multiple of KT (vq_tile()). Groups g0 <= g < g1 only.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#ifdef __AVX512F__             /* 32 vector registers: a 3 x 64 tile of 16-float vectors */
#define W 16
#else                          /* 16 registers (AVX2, NEON): 3 x 32 with 8-float vectors */
#define W 8
#endif
#define KV 4                   /* vectors of codes per tile: KT = KV * W codes */
#define TB 3                   /* tokens per tile */

typedef float vf __attribute__((vector_size(W * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(W * sizeof(int32_t))));

static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline vf splat(float s) { vf zero = {0}; return zero + s; }  /* a broadcast */

static void lane_reduce(vf best, vi idx, int64_t *out)
{
    float bv = best[0];
    int32_t bi = idx[0];
    for (int l = 1; l < W; l++)
        if (best[l] < bv || (best[l] == bv && idx[l] < bi)) { bv = best[l]; bi = idx[l]; }
    *out = bi;
}

void vq_nearest(const float *x, const float *cbt, const float *norms, int64_t *out,
                int64_t M, int64_t G, int64_t d, int64_t K, int64_t g0, int64_t g1)
{
    const int64_t KT = KV * W;
    vi lane;
    for (int l = 0; l < W; l++) lane[l] = l;
    for (int64_t g = g0; g < g1; g++) {
        const float *c = cbt + g * d * K;
        const float *nr = norms + g * K;
        for (int64_t t0 = 0; t0 < M; t0 += TB) {
            int64_t tb = M - t0 < TB ? M - t0 : TB;
            vf best[TB];
            vi bidx[TB];
            for (int i = 0; i < TB; i++) { best[i] = splat(FLT_MAX); bidx[i] = lane * 0; }
            float xs[TB][d];               /* -2 x of the tile's tokens (a VLA: d floats each) */
            for (int64_t i = 0; i < tb; i++)
                for (int64_t j = 0; j < d; j++) xs[i][j] = -2.0f * x[((t0 + i) * G + g) * d + j];
            for (int64_t i = tb; i < TB; i++)
                for (int64_t j = 0; j < d; j++) xs[i][j] = 0.0f;
            for (int64_t k0 = 0; k0 < K; k0 += KT) {
                const float *tile = c + k0 * d;     /* [d, KT] */
                vf acc[TB][KV];
                for (int v = 0; v < KV; v++) {
                    vf n = load(nr + k0 + v * W);
                    for (int i = 0; i < TB; i++) acc[i][v] = n;
                }
                for (int64_t j = 0; j < d; j++) {
                    vf cv[KV];
                    for (int v = 0; v < KV; v++) cv[v] = load(tile + j * KT + v * W);
                    for (int i = 0; i < TB; i++) {
                        vf xv = splat(xs[i][j]);
                        for (int v = 0; v < KV; v++) acc[i][v] += xv * cv[v];
                    }
                }
                for (int i = 0; i < TB; i++)
                    for (int v = 0; v < KV; v++) {
                        vi k = lane + (int32_t)(k0 + v * W);
                        vi lt = acc[i][v] < best[i];            /* strict: earlier k wins ties */
                        best[i] = (vf)(((vi)acc[i][v] & lt) | ((vi)best[i] & ~lt));  /* bit blend */
                        bidx[i] = (k & lt) | (bidx[i] & ~lt);
                    }
            }
            for (int64_t i = 0; i < tb; i++) lane_reduce(best[i], bidx[i], out + (t0 + i) * G + g);
        }
    }
}

int64_t vq_tile(void) { return KV * W; }
