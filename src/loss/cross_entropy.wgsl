// cross-entropy (src/loss/cross_entropy.rs): the row's max-shifted log-sum-exp minus the
// target-weighted logits, and DELTA = (softmax(y^) * sum(y) - y) / GRAD_NORM times the output
// activation's derivative.
fn cross_entropy_row(b: u32, base: u32) -> f32 {
    var total = 0.0;
    var peak = output[base];
    for (var c = 1u; c < dims.cols; c++) {
        peak = max(peak, output[base + c]);
    }
    var sum = 0.0;
    var mass = 0.0;
    for (var c = 0u; c < dims.cols; c++) {
        sum += exp(output[base + c] - peak);
        mass += target_at(b, c);
    }
    let log_sum = log(sum);
    for (var c = 0u; c < dims.cols; c++) {
        let shifted = output[base + c] - peak;
        let y = target_at(b, c);
        total += y * (log_sum - shifted);
        let g = ((exp(shifted) / sum) * mass - y) / dims.grad_norm;
        delta[base + c] = g * activate_grad(pre[base + c]);
    }
    return total;
}

// Index of the first largest of the row's outputs (or of its targets).
fn argmax_output(base: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < dims.cols; c++) {
        if (output[base + c] > output[base + best]) {
            best = c;
        }
    }
    return best;
}

fn argmax_target(b: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < dims.cols; c++) {
        if (target_at(b, c) > target_at(b, best)) {
            best = c;
        }
    }
    return best;
}

// Right when the first largest output is the class (the first largest of soft targets).
fn cross_entropy_correct(b: u32, base: u32) -> u32 {
    return select(0u, 1u, argmax_output(base) == argmax_target(b));
}
