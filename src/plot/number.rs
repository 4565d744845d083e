//! Numbers as people read them: in tables (fixed decimals where those show the value, scientific
//! notation where they would not) and on axes (as short as the value allows).

/// Decimal places [`decimal`] gives a loss in a table.
pub const LOSS_PLACES: usize = 5;

/// `v` with `places` decimals when that shows at least three significant digits and `|v|` is
/// below 100,000; otherwise in scientific notation with three decimals, so that a diverged loss
/// reads `1.878e31` (not 32 digits) and a tiny one `4.200e-6` (not `0.00000`). Zero is `0` with
/// `places` decimals; NaN and infinities read `NaN`, `inf` and `-inf`.
pub fn decimal(v: f64, places: usize) -> String {
    let ordinary = 10f64.powi(2 - places.min(300) as i32)..1e5;
    if v == 0.0 || !v.is_finite() || ordinary.contains(&v.abs()) {
        format!("{v:.places$}")
    } else {
        format!("{v:.3e}")
    }
}

/// A short axis label: `2.5e6`, `350000`, `300`, `0.05`, `1e-4`.
pub(super) fn tick(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:.1e}").replace(".0e", "e")
    } else {
        let text = format!("{v:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if text == "-0" { "0" } else { text }.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_values_keep_their_decimals_and_extremes_turn_scientific() {
        assert_eq!(decimal(0.11475, 5), "0.11475");
        assert_eq!(decimal(2.19354, 5), "2.19354");
        assert_eq!(decimal(0.00164, 5), "0.00164");
        assert_eq!(decimal(0.0, 5), "0.00000");
        assert_eq!(decimal(4.2e-6, 5), "4.200e-6");
        assert_eq!(decimal(18783095484333195569332312080384.0, 5), "1.878e31");
        assert_eq!(decimal(-3.5e7, 5), "-3.500e7");
        assert_eq!(decimal(f64::NAN, 5), "NaN");
        assert_eq!(decimal(f64::INFINITY, 5), "inf");
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(60.0), "60");
        assert_eq!(tick(1e6), "1e6");
        assert_eq!(tick(3.5e5), "350000");
        assert_eq!(tick(2.5e6), "2.5e6");
        assert_eq!(tick(1e-4), "1e-4");
        assert_eq!(tick(-1e-17 + 1e-17), "0");
    }
}
