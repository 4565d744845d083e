//! `identity`: the identity, for linear outputs.

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "identity";

/// Its WGSL: `identity_activate(z)` and `identity_grad(z)`, the same arithmetic as below.
pub(super) const WGSL: &str = include_str!("identity.wgsl");

/// `f(z) = z`.
pub(super) fn apply(z: f32) -> f32 {
    z
}

/// `f'(z) = 1`.
pub(super) fn derivative(_z: f32) -> f32 {
    1.0
}
