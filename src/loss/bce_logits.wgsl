// bce-logits (src/loss/bce_logits.rs): the row's summed max(x,0) - x y + log1p(e^-|x|), and
// DELTA = (sigmoid(x) - y) / GRAD_NORM times the output activation's derivative.

// log(1 + x) accurate for small x (Goldberg's correction).
fn log1p(x: f32) -> f32 {
    let u = 1.0 + x;
    if (u == 1.0) {
        return x;
    }
    return log(u) * x / (u - 1.0);
}

fn bce_logits_row(b: u32, base: u32) -> f32 {
    var total = 0.0;
    for (var c = 0u; c < dims.cols; c++) {
        let x = output[base + c];
        let y = target_at(b, c);
        total += max(x, 0.0) - x * y + log1p(exp(-abs(x)));
        let g = (sigmoid(x) - y) / dims.grad_norm;
        delta[base + c] = g * activate_grad(pre[base + c]);
    }
    return total;
}

// Right when every logit has its target's side of 0 (a target above 0.5 wants a positive logit).
fn bce_logits_correct(b: u32, base: u32) -> u32 {
    for (var c = 0u; c < dims.cols; c++) {
        if ((output[base + c] > 0.0) != (target_at(b, c) > 0.5)) {
            return 0u;
        }
    }
    return 1u;
}
