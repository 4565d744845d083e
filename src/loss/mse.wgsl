// mse (src/loss/mse.rs): the row's summed squared error, and DELTA = 2 (y^ - y) / GRAD_NORM
// times the output activation's derivative.
fn mse_row(b: u32, base: u32) -> f32 {
    var total = 0.0;
    for (var c = 0u; c < dims.cols; c++) {
        let d = output[base + c] - target_at(b, c);
        total += d * d;
        let g = 2.0 * d / dims.grad_norm;
        delta[base + c] = g * activate_grad(pre[base + c]);
    }
    return total;
}

// Regression has no right or wrong rows.
fn mse_correct(b: u32, base: u32) -> u32 {
    return 0u;
}
