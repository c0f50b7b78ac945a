// What a step's forward pass costs as a function of its rows, fitted online from the engine's
// decoding steps (seconds ≈ base + per_row · rows, exponentially weighted least squares): what
// one more guessed token costs to verify, next to a step of one token. Speculative decoding
// (engine/verify.h) sizes its guesses by it: on a GPU a row is nearly free, on a compute-bound
// CPU it costs a good part of a step.
#pragma once

#include <algorithm>
#include <cstdint>

namespace gpt2 {

class step_cost {
public:
    void add(uint32_t rows, double seconds) {
        constexpr double keep = 0.98;   // weight of the past: about the last 50 steps count
        n_                    = n_ * keep + 1.0;
        sx_                   = sx_ * keep + rows;
        sy_                   = sy_ * keep + seconds;
        sxx_                  = sxx_ * keep + (double) rows * rows;
        sxy_                  = sxy_ * keep + rows * seconds;
    }

    // A step's time for one token.
    double one_row() const {
        const auto [base, per_row] = fit();
        return base + per_row;
    }

    // What one more row is assumed to cost before steps of different sizes were seen.
    static constexpr double assumed_row_ratio = 0.25;

    // One more row's time over a one-token step's.
    double row_ratio() const {
        if (n_ * sxx_ - sx_ * sx_ < 1e-9 * n_ * n_) return assumed_row_ratio;
        const auto [base, per_row] = fit();
        if (per_row <= 0.0) return 0.02;
        if (base <= 0.0) return 1.0;
        return std::clamp(per_row / (base + per_row), 0.02, 1.0);
    }

private:
    struct line {
        double base, per_row;
    };

    line fit() const {
        const double var = n_ * sxx_ - sx_ * sx_;
        if (n_ <= 0.0) return { 0.0, 0.0 };
        if (var < 1e-9 * n_ * n_) return { sy_ / n_, 0.0 };
        const double per_row = (n_ * sxy_ - sx_ * sy_) / var;
        return { (sy_ - per_row * sx_) / n_, per_row };
    }

    double n_ = 0, sx_ = 0, sy_ = 0, sxx_ = 0, sxy_ = 0;
};

}   // namespace gpt2
