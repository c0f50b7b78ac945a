// A small, self-contained GPT-2 trainer for the speculative-decoding benchmark's test models
// (bench/speculative/make-models.ts drives it). CPU only, C++17 + OpenMP, no other libraries:
//
//   g++ -O3 -march=native -fopenmp -std=c++17 -o train train.cpp
//   ./train --gradcheck
//   ./train --train T.bin --val V.bin --out W.bin --layers 2 --embd 256 --heads 8 --ctx 256
//       --classes N --unused U --sep S --minutes 4
//
// The architecture is exactly what llama.cpp's `gpt2` graph computes at inference: token +
// learned position embedding; pre-LayerNorm blocks (ln_1 → causal self-attention with a fused
// qkv projection → output projection, residual; ln_2 → fc 4·d → GELU (tanh form) → projection,
// residual); a final LayerNorm; the LM head tied to the token embedding; LayerNorm eps 1e-5.
//
// Compact vocabulary: token ids in the data files are class ids 0..N-1. Classes 0..N-2 are the
// GPT-2 tokens make-models.ts keeps (those frequent in the training text); class N-1 ("unused")
// stands for the U other GPT-2 tokens, which all share its embedding row. Its logit gets
// + log(U), so the softmax over N classes is exactly the softmax over all 50257 tokens of the
// model make-models.ts writes (every other token's row = the unused row), with each of the U
// tokens getting 1/U of the class. The loss printed is that full-vocabulary loss (a target in
// the class pays log(U) more), and the LM head costs N instead of 50257 columns.
//
// Deterministic for a seed and a step count: fixed OpenMP static schedules, no atomics, every
// reduction summed in a fixed order. With --minutes the step count comes from the measured
// time of the first steps (printed, so `--steps` reproduces a run).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// ---- random numbers: splitmix64, platform independent ---------------------------------------

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double   uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }   // [0, 1)
    uint64_t below(uint64_t n) { return next() % n; }
    double   normal() {
        double u1 = 1.0 - uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

// ---- kernels ----------------------------------------------------------------------------------

// C[M×N] (+)= A[M×K] · B[N×K]ᵀ, all row-major. The one matmul form: both operands are read
// along K, so a 4×4 block of dot products vectorizes over K with 16 accumulators, and the other
// products (backward) are this one on transposed copies. Tiles of 64×64 keep B's rows in cache.
template <class F> void matmul_nt(F * C, const F * A, const F * B, int M, int N, int K, bool accumulate) {
    constexpr int TI = 64, TJ = 64;
    const int     ni = (M + TI - 1) / TI, nj = (N + TJ - 1) / TJ;
#pragma omp parallel for collapse(2) schedule(static)
    for (int bi = 0; bi < ni; bi++) {
        for (int bj = 0; bj < nj; bj++) {
            const int i1 = std::min(M, bi * TI + TI), j1 = std::min(N, bj * TJ + TJ);
            for (int i = bi * TI; i < i1; i += 4) {
                for (int j = bj * TJ; j < j1; j += 4) {
                    if (i + 4 <= i1 && j + 4 <= j1) {
                        const F *a0 = A + (size_t) i * K, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
                        const F *b0 = B + (size_t) j * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
                        F        c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
                        F        c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
#pragma omp simd reduction(+ : c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33)
                        for (int k = 0; k < K; k++) {
                            const F x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
                            const F y0 = b0[k], y1 = b1[k], y2 = b2[k], y3 = b3[k];
                            c00 += x0 * y0;
                            c01 += x0 * y1;
                            c02 += x0 * y2;
                            c03 += x0 * y3;
                            c10 += x1 * y0;
                            c11 += x1 * y1;
                            c12 += x1 * y2;
                            c13 += x1 * y3;
                            c20 += x2 * y0;
                            c21 += x2 * y1;
                            c22 += x2 * y2;
                            c23 += x2 * y3;
                            c30 += x3 * y0;
                            c31 += x3 * y1;
                            c32 += x3 * y2;
                            c33 += x3 * y3;
                        }
                        const F r[4][4] = { { c00, c01, c02, c03 }, { c10, c11, c12, c13 }, { c20, c21, c22, c23 }, { c30, c31, c32, c33 } };
                        for (int ii = 0; ii < 4; ii++) {
                            F * c = C + (size_t) (i + ii) * N + j;
                            for (int jj = 0; jj < 4; jj++) c[jj] = (accumulate ? c[jj] : F(0)) + r[ii][jj];
                        }
                    } else {   // ragged edge of the matrix
                        for (int ii = i; ii < std::min(i + 4, i1); ii++) {
                            for (int jj = j; jj < std::min(j + 4, j1); jj++) {
                                const F *a = A + (size_t) ii * K, *b = B + (size_t) jj * K;
                                F        s = 0;
                                for (int k = 0; k < K; k++) s += a[k] * b[k];
                                F & c = C[(size_t) ii * N + jj];
                                c     = (accumulate ? c : F(0)) + s;
                            }
                        }
                    }
                }
            }
        }
    }
}

template <class F> void transpose(F * dst, const F * src, int rows, int cols) {   // dst[cols×rows] = src[rows×cols]ᵀ
    constexpr int TB = 32;
#pragma omp parallel for collapse(2) schedule(static)
    for (int r0 = 0; r0 < rows; r0 += TB) {
        for (int c0 = 0; c0 < cols; c0 += TB) {
            for (int r = r0; r < std::min(rows, r0 + TB); r++) {
                for (int c = c0; c < std::min(cols, c0 + TB); c++) dst[(size_t) c * rows + r] = src[(size_t) r * cols + c];
            }
        }
    }
}

// out[j] += Σ_i x[i][j]: parallel over columns so every sum runs in row order (deterministic).
template <class F> void add_column_sums(F * out, const F * x, int rows, int cols) {
    constexpr int CB = 64;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < cols; c0 += CB) {
        const int c1 = std::min(cols, c0 + CB);
        for (int r = 0; r < rows; r++) {
            const F * row = x + (size_t) r * cols;
            for (int c = c0; c < c1; c++) out[c] += row[c];
        }
    }
}

// exp for the softmax over the vocabulary (its one hot loop): libm's expf does not vectorize
// without -ffast-math. Range reduction to r in [-ln2/2, ln2/2], a degree-6 polynomial (relative
// error ~2e-7), then 2^n through the exponent bits. Inputs are ≤ 0 here (max subtracted).
inline float fastExp(float x) {
    x                  = std::max(x, -87.0f);
    const float n      = std::floor(x * 1.44269504f + 0.5f);
    const float r      = (x - n * 0.693359375f) + n * 2.12194440e-4f;   // ln2 split in two for precision
    float       p      = 1.0f / 720;
    p                  = p * r + 1.0f / 120;
    p                  = p * r + 1.0f / 24;
    p                  = p * r + 1.0f / 6;
    p                  = p * r + 0.5f;
    p                  = p * r + 1.0f;
    p                  = p * r + 1.0f;
    const int32_t bits = ((int32_t) n + 127) << 23;
    float         scale;
    std::memcpy(&scale, &bits, 4);
    return p * scale;
}
inline double fastExp(double x) { return std::exp(x); }   // the double model is only for --gradcheck

constexpr double kLnEps = 1e-5;

template <class F> void layernorm_forward(F * y, F * mean, F * rstd, const F * x, const F * w, const F * b, int rows, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const F * xr = x + (size_t) r * C;
        double    m = 0, v = 0;
        for (int c = 0; c < C; c++) m += xr[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        const double s = 1.0 / std::sqrt(v / C + kLnEps);
        mean[r]        = F(m);
        rstd[r]        = F(s);
        F * yr         = y + (size_t) r * C;
        for (int c = 0; c < C; c++) yr[c] = F((xr[c] - m) * s) * w[c] + b[c];
    }
}

// dx = (or +=) the input gradient; dw, db accumulate. xhat is recomputed rather than stored.
template <class F>
void layernorm_backward(F * dx, F * dw, F * db, const F * dy, const F * x, const F * mean, const F * rstd, const F * w, int rows, int C,
                        bool accumulate) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const F *xr = x + (size_t) r * C, *dyr = dy + (size_t) r * C;
        const F  m = mean[r], s = rstd[r];
        double   g = 0, gx = 0;   // mean of dxhat, mean of dxhat·xhat
        for (int c = 0; c < C; c++) {
            const F dxh = dyr[c] * w[c];
            g += dxh;
            gx += dxh * (xr[c] - m) * s;
        }
        g /= C;
        gx /= C;
        F * dxr = dx + (size_t) r * C;
        for (int c = 0; c < C; c++) {
            const F xh = (xr[c] - m) * s;
            const F v  = s * (dyr[c] * w[c] - F(g) - xh * F(gx));
            dxr[c]     = accumulate ? dxr[c] + v : v;
        }
    }
    constexpr int CB = 64;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += CB) {
        const int c1 = std::min(C, c0 + CB);
        for (int r = 0; r < rows; r++) {
            const F *xr = x + (size_t) r * C, *dyr = dy + (size_t) r * C;
            for (int c = c0; c < c1; c++) {
                dw[c] += dyr[c] * (xr[c] - mean[r]) * rstd[r];
                db[c] += dyr[c];
            }
        }
    }
}

constexpr double kGeluS = 0.7978845608028654;   // sqrt(2/π)

template <class F> void       gelu_forward(F * y, const F * x, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        const F v = x[i];
        y[i]      = F(0.5) * v * (F(1) + std::tanh(F(kGeluS) * (v + F(0.044715) * v * v * v)));
    }
}

template <class F> void       gelu_backward(F * dx, const F * x, const F * dy, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        const F v  = x[i];
        const F t  = std::tanh(F(kGeluS) * (v + F(0.044715) * v * v * v));
        const F dt = F(kGeluS) * (F(1) + F(3 * 0.044715) * v * v);
        dx[i]      = dy[i] * (F(0.5) * (F(1) + t) + F(0.5) * v * (F(1) - t * t) * dt);
    }
}

// ---- the model --------------------------------------------------------------------------------

struct Shape {
    int L, C, H, T, V;   // blocks, width, heads, context, classes (compact vocabulary incl. "unused")
};

// Offsets of every tensor in the flat parameter vector, in the order of the weights file.
struct Layout {
    struct Block {
        size_t ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fc2w, fc2b;
    };
    size_t             wte, wpe, lnfw, lnfb, total = 0;
    std::vector<Block> blocks;
    struct Tensor {
        size_t off, n;
        int    kind;
    };   // kind: 0 matrix (decayed), 1 gain, 2 bias, 3 residual proj
    std::vector<Tensor> tensors;

    explicit Layout(const Shape & s) {
        const size_t C   = s.C;
        auto         add = [&](size_t n, int kind) {
            tensors.push_back({ total, n, kind });
            total += n;
            return total - n;
        };
        wte = add((size_t) s.V * C, 0);
        wpe = add((size_t) s.T * C, 0);
        for (int l = 0; l < s.L; l++) {
            Block b;
            b.ln1w  = add(C, 1);
            b.ln1b  = add(C, 2);
            b.qkvw  = add(3 * C * C, 0);
            b.qkvb  = add(3 * C, 2);
            b.projw = add(C * C, 3);
            b.projb = add(C, 2);
            b.ln2w  = add(C, 1);
            b.ln2b  = add(C, 2);
            b.fcw   = add(4 * C * C, 0);
            b.fcb   = add(4 * C, 2);
            b.fc2w  = add(4 * C * C, 3);
            b.fc2b  = add(C, 2);
            blocks.push_back(b);
        }
        lnfw = add(C, 1);
        lnfb = add(C, 2);
    }
};

template <class F> struct Model {
    Shape          s;
    Layout         lay;
    int            maxB;
    F              unusedBias;   // log(number of GPT-2 tokens the "unused" class stands for), 0 if none
    std::vector<F> p, g;

    // activations kept for the backward pass (sized for maxB sequences)
    struct Acts {
        std::vector<F> ln1, m1, r1, qkv, att, y, xmid, ln2, m2, r2, fc, fcg;
    };
    std::vector<std::vector<F>> x;   // residual stream entering block l (x[L] leaves the last block)
    std::vector<Acts>           acts;
    std::vector<F>              hf, mf, rf, probs, rowLoss;
    // backward scratch
    std::vector<F>   dx, dtmp, dbig, dqkv, dy, wT, dOutT, inT;
    std::vector<int> inTok, tgtTok;
    int              B = 0;

    Model(const Shape & shape, int maxBatch, double nUnused) : s(shape), lay(shape), maxB(maxBatch) {
        unusedBias = nUnused > 0 ? F(std::log(nUnused)) : F(0);
        p.assign(lay.total, 0);
        g.assign(lay.total, 0);
        const size_t M = (size_t) maxB * s.T, C = s.C;
        x.assign(s.L + 1, std::vector<F>(M * C));
        acts.resize(s.L);
        for (auto & a : acts) {
            a.ln1.resize(M * C);
            a.m1.resize(M);
            a.r1.resize(M);
            a.qkv.resize(M * 3 * C);
            a.att.resize((size_t) maxB * s.H * s.T * s.T);
            a.y.resize(M * C);
            a.xmid.resize(M * C);
            a.ln2.resize(M * C);
            a.m2.resize(M);
            a.r2.resize(M);
            a.fc.resize(M * 4 * C);
            a.fcg.resize(M * 4 * C);
        }
        hf.resize(M * C);
        mf.resize(M);
        rf.resize(M);
        probs.resize(M * s.V);
        rowLoss.resize(M);
        dx.resize(M * C);
        dtmp.resize(M * C);
        dbig.resize(M * 4 * C);
        dqkv.resize(M * 3 * C);
        dy.resize(M * C);
        const size_t big = std::max({ (size_t) s.V * C, 4 * C * C, M * (size_t) s.V, M * 4 * C });
        wT.resize(big);
        dOutT.resize(big);
        inT.resize(big);
        inTok.resize(M);
        tgtTok.resize(M);
    }

    // GPT-2's init: std 0.02, residual projections 0.02/sqrt(2L), LayerNorm gains 1, biases 0;
    // except the position embedding, which starts as sinusoids of the same rms (still trained):
    // relative positions are then linear maps away, which helps the previous-token heads that
    // copying (induction) needs to form within a few minutes' training.
    // `scale` > 1 and random gains/biases are for the gradient check (to exercise every path).
    void init(uint64_t seed, double scale, bool randomNorms) {
        Rng rng(seed);
        for (const auto & t : lay.tensors) {
            const double std = 0.02 * scale / (t.kind == 3 ? std::sqrt(2.0 * s.L) : 1.0);
            for (size_t i = 0; i < t.n; i++) {
                F & v = p[t.off + i];
                if (t.kind == 1) v = F(1 + (randomNorms ? 0.1 * rng.normal() : 0));
                else if (t.kind == 2) v = F(randomNorms ? 0.1 * rng.normal() : 0);
                else v = F(std * rng.normal());
            }
        }
        for (int t = 0; t < s.T; t++) {
            for (int c = 0; c < s.C; c += 2) {
                const double angle = t * std::pow(10000.0, -(double) c / s.C), amp = 0.02 * scale * std::sqrt(2.0);
                p[lay.wpe + (size_t) t * s.C + c] = F(amp * std::sin(angle));
                if (c + 1 < s.C) p[lay.wpe + (size_t) t * s.C + c + 1] = F(amp * std::cos(angle));
            }
        }
    }

    // y[M×N] = in[M×K] · W[N×K]ᵀ + b
    static void linear(F * y, const F * in, const F * W, const F * b, int M, int N, int K) {
        matmul_nt(y, in, W, M, N, K, false);
        if (b) {
#pragma omp parallel for schedule(static)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) y[(size_t) i * N + j] += b[j];
        }
    }

    // Given dOut, adds to dW and db and sets dIn (when not null) = dOut · W.
    void linear_backward(F * dIn, F * dW, F * db, const F * dOut, const F * in, const F * W, int M, int N, int K) {
        if (dIn) {
            transpose(wT.data(), W, N, K);
            matmul_nt(dIn, dOut, wT.data(), M, K, N, false);
        }
        transpose(dOutT.data(), dOut, M, N);
        transpose(inT.data(), in, M, K);
        matmul_nt(dW, dOutT.data(), inT.data(), N, K, M, true);
        if (db) add_column_sums(db, dOut, M, N);
    }

    void attention_forward(Acts & a) {
        const int T = s.T, H = s.H, C = s.C, hs = C / H;
        const F   scale = F(1.0 / std::sqrt((double) hs));
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                for (int t = 0; t < T; t++) {
                    const F * q  = &a.qkv[((size_t) b * T + t) * 3 * C + h * hs];
                    F *       pr = &a.att[(((size_t) b * H + h) * T + t) * T];
                    F         mx = -1e30f;
                    for (int u = 0; u <= t; u++) {
                        const F * k = &a.qkv[((size_t) b * T + u) * 3 * C + C + h * hs];
                        F         d = 0;
                        for (int i = 0; i < hs; i++) d += q[i] * k[i];
                        pr[u] = d * scale;
                        mx    = std::max(mx, pr[u]);
                    }
                    F sum = 0;
                    for (int u = 0; u <= t; u++) {
                        pr[u] = std::exp(pr[u] - mx);
                        sum += pr[u];
                    }
                    for (int u = 0; u <= t; u++) pr[u] /= sum;
                    F * o = &a.y[((size_t) b * T + t) * C + h * hs];
                    for (int i = 0; i < hs; i++) o[i] = 0;
                    for (int u = 0; u <= t; u++) {
                        const F * v = &a.qkv[((size_t) b * T + u) * 3 * C + 2 * C + h * hs];
                        for (int i = 0; i < hs; i++) o[i] += pr[u] * v[i];
                    }
                }
            }
        }
    }

    // dqkv = ∂loss/∂qkv from dy = ∂loss/∂(attention output); each (b, h) owns its columns.
    void attention_backward(const Acts & a) {
        const int T = s.T, H = s.H, C = s.C, hs = C / H;
        const F   scale = F(1.0 / std::sqrt((double) hs));
        std::fill(dqkv.begin(), dqkv.begin() + (size_t) B * T * 3 * C, F(0));
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                std::vector<F> dp(T);
                for (int t = 0; t < T; t++) {
                    const F * pr  = &a.att[(((size_t) b * H + h) * T + t) * T];
                    const F * dyt = &dy[((size_t) b * T + t) * C + h * hs];
                    const F * q   = &a.qkv[((size_t) b * T + t) * 3 * C + h * hs];
                    F *       dq  = &dqkv[((size_t) b * T + t) * 3 * C + h * hs];
                    F         dot = 0;
                    for (int u = 0; u <= t; u++) {
                        const size_t ru = ((size_t) b * T + u) * 3 * C;
                        const F *    v  = &a.qkv[ru + 2 * C + h * hs];
                        F *          dv = &dqkv[ru + 2 * C + h * hs];
                        F            d  = 0;
                        for (int i = 0; i < hs; i++) {
                            d += dyt[i] * v[i];
                            dv[i] += pr[u] * dyt[i];
                        }
                        dp[u] = d;
                        dot += pr[u] * d;
                    }
                    for (int u = 0; u <= t; u++) {
                        const F      ds = pr[u] * (dp[u] - dot) * scale;   // through the softmax and the 1/sqrt(hs)
                        const size_t ru = ((size_t) b * T + u) * 3 * C;
                        const F *    k  = &a.qkv[ru + C + h * hs];
                        F *          dk = &dqkv[ru + C + h * hs];
                        for (int i = 0; i < hs; i++) {
                            dq[i] += ds * k[i];
                            dk[i] += ds * q[i];
                        }
                    }
                }
            }
        }
    }

    // Mean cross-entropy (nats per token, full GPT-2 vocabulary) of `tgt` after `in`, nb sequences.
    double forward(const int * in, const int * tgt, int nb) {
        B           = nb;
        const int T = s.T, C = s.C, V = s.V, M = B * T;
        std::copy(in, in + M, inTok.begin());
        std::copy(tgt, tgt + M, tgtTok.begin());
        const F * wte = &p[lay.wte];
        const F * wpe = &p[lay.wpe];
#pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) {
            for (int c = 0; c < C; c++) x[0][(size_t) i * C + c] = wte[(size_t) in[i] * C + c] + wpe[(size_t) (i % T) * C + c];
        }
        for (int l = 0; l < s.L; l++) {
            const auto & w = lay.blocks[l];
            Acts &       a = acts[l];
            layernorm_forward(a.ln1.data(), a.m1.data(), a.r1.data(), x[l].data(), &p[w.ln1w], &p[w.ln1b], M, C);
            linear(a.qkv.data(), a.ln1.data(), &p[w.qkvw], &p[w.qkvb], M, 3 * C, C);
            attention_forward(a);
            linear(a.xmid.data(), a.y.data(), &p[w.projw], &p[w.projb], M, C, C);
            for (size_t i = 0; i < (size_t) M * C; i++) a.xmid[i] += x[l][i];
            layernorm_forward(a.ln2.data(), a.m2.data(), a.r2.data(), a.xmid.data(), &p[w.ln2w], &p[w.ln2b], M, C);
            linear(a.fc.data(), a.ln2.data(), &p[w.fcw], &p[w.fcb], M, 4 * C, C);
            gelu_forward(a.fcg.data(), a.fc.data(), (size_t) M * 4 * C);
            linear(x[l + 1].data(), a.fcg.data(), &p[w.fc2w], &p[w.fc2b], M, C, 4 * C);
            for (size_t i = 0; i < (size_t) M * C; i++) x[l + 1][i] += a.xmid[i];
        }
        layernorm_forward(hf.data(), mf.data(), rf.data(), x[s.L].data(), &p[lay.lnfw], &p[lay.lnfb], M, C);
        matmul_nt(probs.data(), hf.data(), wte, M, V, C, false);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) {
            F * r = &probs[(size_t) i * V];
            r[V - 1] += unusedBias;
            F mx = r[0];
            for (int v = 1; v < V; v++) mx = std::max(mx, r[v]);
            const F target = r[tgt[i]] - mx;
            F       sum    = 0;
#pragma omp simd reduction(+ : sum)
            for (int v = 0; v < V; v++) {
                r[v] = fastExp(r[v] - mx);
                sum += r[v];
            }
            rowLoss[i]  = F(std::log((double) sum) - (double) target + (tgt[i] == V - 1 ? (double) unusedBias : 0.0));
            const F inv = F(1) / sum;
            for (int v = 0; v < V; v++) r[v] *= inv;
        }
        double loss = 0;
        for (int i = 0; i < M; i++) loss += rowLoss[i];
        return loss / M;
    }

    // Gradients of the last forward's mean loss into g (added: zero g first).
    void backward() {
        const int T = s.T, C = s.C, V = s.V, M = B * T;
        // dlogits = (softmax − onehot) / M, in place of the probabilities
#pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) {
            F * r = &probs[(size_t) i * V];
            r[tgtTok[i]] -= 1;
            const F inv = F(1) / M;
            for (int v = 0; v < V; v++) r[v] *= inv;
        }
        linear_backward(dtmp.data(), &g[lay.wte], nullptr, probs.data(), hf.data(), &p[lay.wte], M, V, C);
        layernorm_backward(dx.data(), &g[lay.lnfw], &g[lay.lnfb], dtmp.data(), x[s.L].data(), mf.data(), rf.data(), &p[lay.lnfw], M, C,
                           false);
        // dx is now ∂loss/∂x[l+1]; each block adds its branches' gradients to it
        for (int l = s.L - 1; l >= 0; l--) {
            const auto & w = lay.blocks[l];
            const Acts & a = acts[l];
            linear_backward(dbig.data(), &g[w.fc2w], &g[w.fc2b], dx.data(), a.fcg.data(), &p[w.fc2w], M, C, 4 * C);
            gelu_backward(dbig.data(), a.fc.data(), dbig.data(), (size_t) M * 4 * C);
            linear_backward(dtmp.data(), &g[w.fcw], &g[w.fcb], dbig.data(), a.ln2.data(), &p[w.fcw], M, 4 * C, C);
            layernorm_backward(dx.data(), &g[w.ln2w], &g[w.ln2b], dtmp.data(), a.xmid.data(), a.m2.data(), a.r2.data(), &p[w.ln2w], M, C,
                               true);
            linear_backward(dy.data(), &g[w.projw], &g[w.projb], dx.data(), a.y.data(), &p[w.projw], M, C, C);
            attention_backward(a);
            linear_backward(dtmp.data(), &g[w.qkvw], &g[w.qkvb], dqkv.data(), a.ln1.data(), &p[w.qkvw], M, 3 * C, C);
            layernorm_backward(dx.data(), &g[w.ln1w], &g[w.ln1b], dtmp.data(), x[l].data(), a.m1.data(), a.r1.data(), &p[w.ln1w], M, C,
                               true);
        }
        // embeddings: serial, since tokens repeat (rows would race)
        F * gwte = &g[lay.wte];
        F * gwpe = &g[lay.wpe];
        for (int i = 0; i < M; i++) {
            for (int c = 0; c < C; c++) {
                gwte[(size_t) inTok[i] * C + c] += dx[(size_t) i * C + c];
                gwpe[(size_t) (i % T) * C + c] += dx[(size_t) i * C + c];
            }
        }
    }
};

// ---- gradient check -----------------------------------------------------------------------------

// Compares the analytic gradient with central differences in double precision on a tiny
// model, for a sample of entries of every tensor. Returns the max relative error.
double gradcheck() {
    const Shape   s{ 2, 16, 2, 8, 13 };
    const int     B = 2;
    Model<double> m(s, B, 1000.0);
    m.init(7, 10.0, true);   // large init and random norms: every path carries a sizable gradient
    Rng              rng(11);
    std::vector<int> in(B * s.T), tgt(B * s.T);
    for (auto & t : in) t = (int) rng.below(s.V);
    for (auto & t : tgt) t = (int) rng.below(s.V);
    std::fill(m.g.begin(), m.g.end(), 0.0);
    const double loss = m.forward(in.data(), tgt.data(), B);
    m.backward();
    const std::vector<double> analytic = m.g;
    double                    maxRel = 0, maxAbs = 0;
    size_t                    checked = 0;
    const double              eps     = 1e-5;
    for (const auto & t : m.lay.tensors) {
        for (int k = 0; k < 24; k++) {
            const size_t i    = t.off + (k < 2 ? k * (t.n - 1) : rng.below(t.n));
            const double keep = m.p[i];
            m.p[i]            = keep + eps;
            const double lp   = m.forward(in.data(), tgt.data(), B);
            m.p[i]            = keep - eps;
            const double lm   = m.forward(in.data(), tgt.data(), B);
            m.p[i]            = keep;
            const double num = (lp - lm) / (2 * eps), an = analytic[i];
            const double rel = std::fabs(num - an) / std::max(1e-6, std::fabs(num) + std::fabs(an));
            maxRel           = std::max(maxRel, rel);
            maxAbs           = std::max(maxAbs, std::fabs(num - an));
            checked++;
        }
    }
    std::printf("gradcheck: L=%d C=%d H=%d T=%d classes=%d (unused class stands for 1000 tokens), loss %.4f\n", s.L, s.C, s.H, s.T, s.V,
                loss);
    std::printf("gradcheck: %zu entries of %zu tensors, max relative error %.3e, max absolute error %.3e\n", checked, m.lay.tensors.size(),
                maxRel, maxAbs);
    return maxRel;
}

// ---- data ---------------------------------------------------------------------------------------

std::vector<int> readTokens(const std::string & path) {
    FILE * f = std::fopen(path.c_str(), "rb");
    if (!f) {
        std::perror(path.c_str());
        std::exit(1);
    }
    std::fseek(f, 0, SEEK_END);
    const long bytes = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    std::vector<uint32_t> raw(bytes / 4);
    if (std::fread(raw.data(), 4, raw.size(), f) != raw.size()) {
        std::perror(path.c_str());
        std::exit(1);
    }
    std::fclose(f);
    return std::vector<int>(raw.begin(), raw.end());
}

// Training sequences: plain windows of the text, and (with probability copyProb) edit-copy
// sequences "<passage> SEP <passage with 1–3 small edits> <the text that followed>", which
// teach the model to copy from its context (what the prompt-lookup comparison exercises).
struct Batcher {
    const std::vector<int> & data;
    int                      T, sep;
    double                   copyProb;
    Rng                      rng;

    void sequence(int * in, int * tgt) {
        std::vector<int> seq;
        seq.reserve(T + 1);
        const size_t n = data.size();
        if (rng.uniform() < copyProb) {
            const int    maxLen = (T - 1) / 2 - 4;
            const int    len    = 16 + (int) rng.below(std::max(1, maxLen - 16 + 1));
            const size_t start  = rng.below(n - (T + 1));
            seq.assign(data.begin() + start, data.begin() + start + len);
            seq.push_back(sep);
            const int        edits = 1 + (int) rng.below(3);
            std::vector<int> at(edits);
            for (auto & e : at) e = (int) rng.below(len);
            for (int i = 0; i < len; i++) {
                const int hits = (int) std::count(at.begin(), at.end(), i);
                if (hits == 0) {
                    seq.push_back(data[start + i]);
                    continue;
                }
                if (rng.uniform() < 0.6) seq.push_back(data[rng.below(n)]);   // a word replaced (unigram draw); else dropped
            }
            for (size_t i = start + len; seq.size() < (size_t) T + 1; i++) seq.push_back(data[i % n]);
        } else {
            const size_t start = rng.below(n - (T + 1));
            seq.assign(data.begin() + start, data.begin() + start + T + 1);
        }
        std::copy(seq.begin(), seq.begin() + T, in);
        std::copy(seq.begin() + 1, seq.begin() + T + 1, tgt);
    }
};

// ---- training -----------------------------------------------------------------------------------

struct Args {
    std::string train, val, out;
    int         L = 2, C = 256, H = 8, T = 256, V = 0, B = 4, sep = -1, steps = 0, evalEvery = 0, evalBatches = 8;
    double      unused = 0, minutes = 0, lr = 3e-3, minLrFrac = 0.1, warmup = 0.05, wd = 0.1, clip = 1.0, copyProb = 0.5;
    uint64_t    seed      = 1;
    bool        gradcheck = false;
};

Args parseArgs(int argc, char ** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        const std::string k   = argv[i];
        auto              val = [&]() -> const char * {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", k.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (k == "--gradcheck") a.gradcheck = true;
        else if (k == "--train") a.train = val();
        else if (k == "--val") a.val = val();
        else if (k == "--out") a.out = val();
        else if (k == "--layers") a.L = std::atoi(val());
        else if (k == "--embd") a.C = std::atoi(val());
        else if (k == "--heads") a.H = std::atoi(val());
        else if (k == "--ctx") a.T = std::atoi(val());
        else if (k == "--classes") a.V = std::atoi(val());
        else if (k == "--unused") a.unused = std::atof(val());
        else if (k == "--sep") a.sep = std::atoi(val());
        else if (k == "--batch") a.B = std::atoi(val());
        else if (k == "--steps") a.steps = std::atoi(val());
        else if (k == "--minutes") a.minutes = std::atof(val());
        else if (k == "--lr") a.lr = std::atof(val());
        else if (k == "--wd") a.wd = std::atof(val());
        else if (k == "--copy") a.copyProb = std::atof(val());
        else if (k == "--eval-every") a.evalEvery = std::atoi(val());
        else if (k == "--seed") a.seed = std::strtoull(val(), nullptr, 10);
        else {
            std::fprintf(stderr, "unknown argument %s\n", k.c_str());
            std::exit(2);
        }
    }
    return a;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Val loss over fixed, evenly spaced windows of plain text.
double evaluate(Model<float> & m, const std::vector<int> & val, int nb, int batches) {
    const int        T = m.s.T;
    std::vector<int> in(nb * T), tgt(nb * T);
    const size_t     n = batches * nb, stride = (val.size() - (T + 1)) / n;
    double           sum = 0;
    for (int b = 0; b < batches; b++) {
        for (int j = 0; j < nb; j++) {
            const size_t start = (size_t) (b * nb + j) * stride;
            std::copy(val.begin() + start, val.begin() + start + T, in.begin() + j * T);
            std::copy(val.begin() + start + 1, val.begin() + start + T + 1, tgt.begin() + j * T);
        }
        sum += m.forward(in.data(), tgt.data(), nb);
    }
    return sum / batches;
}

void writeWeights(const std::string & path, const Shape & s, const std::vector<float> & p) {
    FILE * f = std::fopen(path.c_str(), "wb");
    if (!f) {
        std::perror(path.c_str());
        std::exit(1);
    }
    const int32_t header[7] = { 0x32545047 /* "GPT2" */, 1, s.L, s.C, s.H, s.T, s.V };
    std::fwrite(header, sizeof header, 1, f);
    std::fwrite(p.data(), sizeof(float), p.size(), f);
    if (std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::exit(1);
    }
}

int train(const Args & a) {
    if (a.train.empty() || a.val.empty() || a.out.empty() || a.V < 2 || a.sep < 0 || (a.steps <= 0) == (a.minutes <= 0)) {
        std::fprintf(stderr, "need --train --val --out --classes --sep and one of --steps / --minutes\n");
        return 2;
    }
    if (a.C % a.H != 0) {
        std::fprintf(stderr, "--embd must be a multiple of --heads\n");
        return 2;
    }
    const std::vector<int> trainData = readTokens(a.train), valData = readTokens(a.val);
    for (const auto * d : { &trainData, &valData }) {
        for (int t : *d)
            if (t < 0 || t >= a.V) {
                std::fprintf(stderr, "token class %d out of range\n", t);
                return 2;
            }
    }
    const Shape  s{ a.L, a.C, a.H, a.T, a.V };
    Model<float> m(s, a.B, a.unused);
    m.init(a.seed, 1.0, false);
    std::vector<float> mom(m.p.size(), 0), var(m.p.size(), 0);
    Batcher            batcher{ trainData, a.T, a.sep, a.copyProb, Rng(a.seed + 1) };
    std::printf("model: %d layers, n_embd %d, %d heads, context %d, %d classes (+%.0f unused tokens): %.2fM params\n", s.L, s.C, s.H, s.T,
                s.V, a.unused, m.p.size() / 1e6);
    std::printf("data: %zu train tokens, %zu val tokens, %d threads, batch %d×%d, copy sequences %.0f%%\n", trainData.size(),
                valData.size(), omp_get_max_threads(), a.B, a.T, a.copyProb * 100);
    std::fflush(stdout);

    std::vector<int> in(a.B * a.T), tgt(a.B * a.T);
    int              steps = a.steps;
    if (steps == 0) {
        // A time budget becomes a step count before training starts: a few forward/backward
        // passes are timed (on batches of another random stream, gradients thrown away), so the
        // run itself is exactly the `--steps N` run.
        Batcher      probe{ trainData, a.T, a.sep, a.copyProb, Rng(a.seed + 2) };
        const int    probeSteps = 3;
        const double p0         = now();
        for (int i = 0; i < probeSteps; i++) {
            for (int b = 0; b < a.B; b++) probe.sequence(&in[b * a.T], &tgt[b * a.T]);
            m.forward(in.data(), tgt.data(), a.B);
            m.backward();
        }
        const double perStep  = (now() - p0) / probeSteps;
        const double evalCost = 6 * a.evalBatches * perStep / 3;   // ~6 evaluations, a forward pass ≈ 1/3 step
        steps                 = std::max(1, (int) ((a.minutes * 60 - (now() - p0) - evalCost) / perStep));
        std::printf("%.3f s/step measured: %d steps fit in %.1f min (--steps %d repeats this run)\n", perStep, steps, a.minutes, steps);
        std::fflush(stdout);
    }
    const int    evalEvery = a.evalEvery > 0 ? a.evalEvery : std::max(1, steps / 5);
    double       emaLoss = 0, lastVal = NAN, evalSeconds = 0;
    const double t0 = now();
    for (int step = 0; step < steps; step++) {
        // linear warmup, then cosine decay to minLrFrac·lr
        const double warm = std::max(1.0, a.warmup * steps);
        const double prog = std::min(1.0, std::max(0.0, (step - warm) / std::max(1.0, steps - warm)));
        const double lr   = step < warm ? a.lr * (step + 1) / warm
                                        : a.lr * (a.minLrFrac + (1 - a.minLrFrac) * 0.5 * (1 + std::cos(M_PI * prog)));
        for (int b = 0; b < a.B; b++) batcher.sequence(&in[b * a.T], &tgt[b * a.T]);
        std::fill(m.g.begin(), m.g.end(), 0.0f);
        const double loss = m.forward(in.data(), tgt.data(), a.B);
        m.backward();
        // global norm clip, summed in fixed chunks for determinism
        constexpr int       kChunks = 256;
        std::vector<double> part(kChunks, 0);
        const size_t        n = m.p.size(), per = (n + kChunks - 1) / kChunks;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < kChunks; c++) {
            for (size_t i = c * per; i < std::min(n, (c + 1) * per); i++) part[c] += (double) m.g[i] * m.g[i];
        }
        double norm2 = 0;
        for (double v : part) norm2 += v;
        const float clip = (float) std::min(1.0, a.clip / (std::sqrt(norm2) + 1e-6));
        // AdamW; weight decay on matrices (embeddings included), not on gains and biases
        const float b1 = 0.9f, b2 = 0.95f;
        const float c1 = 1.0f / (1 - std::pow(b1, step + 1)), c2 = 1.0f / (1 - std::pow(b2, step + 1));
        for (const auto & t : m.lay.tensors) {
            const float decay = (t.kind == 0 || t.kind == 3) ? (float) (lr * a.wd) : 0.0f;
#pragma omp parallel for simd schedule(static)
            for (size_t i = t.off; i < t.off + t.n; i++) {
                const float gi = m.g[i] * clip;
                mom[i]         = b1 * mom[i] + (1 - b1) * gi;
                var[i]         = b2 * var[i] + (1 - b2) * gi * gi;
                m.p[i] -= (float) lr * (mom[i] * c1) / (std::sqrt(var[i] * c2) + 1e-8f) + decay * m.p[i];
            }
        }
        emaLoss = step == 0 ? loss : 0.95 * emaLoss + 0.05 * loss;
        if ((step + 1) % evalEvery == 0 || step + 1 == steps) {
            const double e0 = now();
            lastVal         = evaluate(m, valData, a.B, a.evalBatches);
            evalSeconds += now() - e0;
            const double el = now() - t0;
            std::printf("step %5d/%d  lr %.2e  train loss %.4f (ema %.4f)  val loss %.4f  %.0f tok/s  %.0fs\n", step + 1, steps, lr, loss,
                        emaLoss, lastVal, (double) (step + 1) * a.B * a.T / (el - evalSeconds), el);
            std::fflush(stdout);
        } else if ((step + 1) % 10 == 0) {
            std::printf("step %5d  train loss %.4f (ema %.4f)\n", step + 1, loss, emaLoss);
            std::fflush(stdout);
        }
    }
    const double elapsed = now() - t0;
    writeWeights(a.out, s, m.p);
    const double tokens = (double) steps * a.B * a.T;
    std::printf("RESULT {\"steps\":%d,\"tokens\":%.0f,\"seconds\":%.1f,\"tokensPerSecond\":%.1f,\"trainLoss\":%.4f,"
                "\"valLoss\":%.4f,\"params\":%zu}\n",
                steps, tokens, elapsed, tokens / (elapsed - evalSeconds), emaLoss, lastVal, m.p.size());
    return 0;
}

}   // namespace

int main(int argc, char ** argv) {
    const Args a = parseArgs(argc, argv);
    if (a.gradcheck) return gradcheck() < 1e-4 ? 0 : 1;
    return train(a);
}
