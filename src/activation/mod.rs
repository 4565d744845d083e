//! Elementwise activations `a = f(z)`, one file each beside its WGSL.
//!
//! Each activation's file holds its name, `f` and `f'` for the CPU engine, and its WGSL beside
//! it (`NAME_activate(z)` and `NAME_grad(z)`, the same arithmetic). The GPU kernels that fuse an
//! activation (the matrix product's epilogues, the loss) are compiled with `wgsl()`: every
//! activation's WGSL and `activate(z)` / `activate_grad(z)` dispatching on the `ACTIVATION`
//! override, which `Activation::kernel_constants` sets per pipeline.
//!
//! Adding an activation touches its own two files (`src/activation/NAME.rs`, `NAME.wgsl`) and
//! this one: its `mod`, its variant, and its arms below.

mod gelu;
mod identity;
mod leaky_relu;
mod relu;
mod sigmoid;
mod tanh;

use std::mem::MaybeUninit;
use std::sync::OnceLock;

pub use sigmoid::sigmoid;

use crate::error::{Error, Result};

/// An elementwise activation `a = f(z)` applied after a layer's linear map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `f(z) = z`.
    Identity,
    /// `f(z) = max(z, 0)`; `f'(z) = 1 if z > 0 else 0`.
    Relu,
    /// `f(z) = z if z > 0 else slope·z`; `f'(z) = 1 if z > 0 else slope`.
    LeakyRelu {
        /// Slope for negative inputs (PyTorch's default is 0.01).
        slope: f32,
    },
    /// `f(z) = 1 / (1 + e^{-z})`; `f'(z) = f(z)(1 − f(z))`.
    Sigmoid,
    /// `f(z) = tanh z`; `f'(z) = 1 − tanh² z`.
    Tanh,
    /// GELU in its tanh form (PyTorch's `approximate='tanh'`):
    /// `f(z) = ½ z (1 + tanh(c (z + 0.044715 z³)))` with `c = √(2/π)`;
    /// `f'(z) = ½ (1 + t) + ½ z (1 − t²) c (1 + 3·0.044715 z²)` with `t = tanh(c (z + 0.044715 z³))`.
    Gelu,
}

/// Every activation (with its default parameters), its name and its WGSL, in the order of their
/// `ACTIVATION` override values.
const KERNELS: [(Activation, &str, &str); 6] = [
    (Activation::Identity, identity::NAME, identity::WGSL),
    (Activation::Relu, relu::NAME, relu::WGSL),
    (
        Activation::LeakyRelu { slope: 0.01 },
        leaky_relu::NAME,
        leaky_relu::WGSL,
    ),
    (Activation::Sigmoid, sigmoid::NAME, sigmoid::WGSL),
    (Activation::Tanh, tanh::NAME, tanh::WGSL),
    (Activation::Gelu, gelu::NAME, gelu::WGSL),
];

impl Activation {
    /// `f(z)`, computed as the GPU kernels compute it (sigmoid in its overflow-free form).
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Identity => identity::apply(z),
            Activation::Relu => relu::apply(z),
            Activation::LeakyRelu { slope } => leaky_relu::apply(z, slope),
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => tanh::apply(z),
            Activation::Gelu => gelu::apply(z),
        }
    }

    /// `out[i] = f(z[i])` for every element, as [`Activation::apply`], in one loop per
    /// activation vectorised at the CPU's widest SIMD (chosen at run time); `out` may start
    /// uninitialised and is wholly written.
    ///
    /// # Panics
    /// If the slices differ in length, which is a bug in the caller.
    pub(crate) fn apply_into(self, z: &[f32], out: &mut [MaybeUninit<f32>]) {
        crate::simd::widest! {
            fn map<F: Fn(f32) -> f32>(z: &[f32], out: &mut [MaybeUninit<f32>], f: F) {
                for (out, &v) in out.iter_mut().zip(z) {
                    out.write(f(v));
                }
            }
        }
        assert_eq!(z.len(), out.len(), "an activation's input and output");
        match self {
            Activation::Identity => map(z, out, identity::apply),
            Activation::Relu => map(z, out, relu::apply),
            Activation::LeakyRelu { slope } => map(z, out, |v| leaky_relu::apply(v, slope)),
            Activation::Sigmoid => map(z, out, sigmoid),
            Activation::Tanh => map(z, out, tanh::apply),
            Activation::Gelu => map(z, out, gelu::apply),
        }
    }

    /// `g[i] ← g[i] · f'(z[i])` for every element (the chain rule through the activation), as
    /// [`Activation::derivative`], in one loop per activation vectorised at the CPU's widest
    /// SIMD (chosen at run time).
    ///
    /// # Panics
    /// If the slices differ in length, which is a bug in the caller.
    pub(crate) fn scale_by_derivative(self, g: &mut [f32], z: &[f32]) {
        crate::simd::widest! {
            fn scale<F: Fn(f32) -> f32>(g: &mut [f32], z: &[f32], d: F) {
                for (g, &z) in g.iter_mut().zip(z) {
                    *g *= d(z);
                }
            }
        }
        assert_eq!(g.len(), z.len(), "a gradient and its pre-activations");
        match self {
            Activation::Identity => scale(g, z, identity::derivative),
            Activation::Relu => scale(g, z, relu::derivative),
            Activation::LeakyRelu { slope } => scale(g, z, |v| leaky_relu::derivative(v, slope)),
            Activation::Sigmoid => scale(g, z, sigmoid::derivative),
            Activation::Tanh => scale(g, z, tanh::derivative),
            Activation::Gelu => scale(g, z, gelu::derivative),
        }
    }

    /// `f'(z)`, the derivative at the pre-activation `z`.
    pub fn derivative(self, z: f32) -> f32 {
        match self {
            Activation::Identity => identity::derivative(z),
            Activation::Relu => relu::derivative(z),
            Activation::LeakyRelu { slope } => leaky_relu::derivative(z, slope),
            Activation::Sigmoid => sigmoid::derivative(z),
            Activation::Tanh => tanh::derivative(z),
            Activation::Gelu => gelu::derivative(z),
        }
    }

    /// Its place in [`KERNELS`]: the `ACTIVATION` override value that picks it.
    fn index(self) -> usize {
        KERNELS
            .iter()
            .position(|(a, _, _)| std::mem::discriminant(a) == std::mem::discriminant(&self))
            .expect("every activation is listed")
    }

    /// The override constants that specialise [`wgsl`] to this activation: `ACTIVATION`, and
    /// the slope of a leaky rectifier (`LEAKY_SLOPE`).
    pub(crate) fn kernel_constants(self) -> [(&'static str, f64); 2] {
        let slope = match self {
            Activation::LeakyRelu { slope } => f64::from(slope),
            _ => 0.0,
        };
        [("ACTIVATION", self.index() as f64), ("LEAKY_SLOPE", slope)]
    }

    /// The name used on the command line and in checkpoints (`relu`, `leaky_relu(0.01)`, ...).
    pub fn name(self) -> String {
        match self {
            Activation::LeakyRelu { slope } => format!("{}({slope})", leaky_relu::NAME),
            other => KERNELS[other.index()].1.to_string(),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;

    /// Parses `identity` (or `linear`, `none`), `relu`, `leaky_relu` (slope 0.01),
    /// `leaky_relu(0.2)`, `sigmoid`, `tanh`, `gelu`.
    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Some((found, _, _)) = KERNELS.iter().find(|(_, name, _)| *name == text) {
            return Ok(*found);
        }
        if matches!(text, "linear" | "none") {
            return Ok(Activation::Identity);
        }
        text.strip_prefix(leaky_relu::NAME)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|s| s.trim().parse::<f32>().ok())
            .filter(|s| s.is_finite())
            .map(|slope| Activation::LeakyRelu { slope })
            .ok_or_else(|| {
                // Each name, and the leaky rectifier's with its slope beside its own.
                let names: Vec<String> = KERNELS
                    .iter()
                    .flat_map(|(a, name, _)| match a {
                        Activation::LeakyRelu { .. } => {
                            vec![name.to_string(), format!("{name}(SLOPE)")]
                        }
                        _ => vec![name.to_string()],
                    })
                    .collect();
                Error::InvalidModel(format!(
                    "unknown activation `{text}`; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The WGSL of every activation and `activate(z)` / `activate_grad(z)`, which call the one the
/// `ACTIVATION` override picks: prepended to the kernels that fuse an activation.
pub(crate) fn wgsl() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let mut source = String::from(include_str!("common.wgsl"));
        for (_, _, wgsl) in KERNELS {
            source.push('\n');
            source.push_str(wgsl);
        }
        for (function, suffix, otherwise) in [
            ("activate", "activate", "z"),
            ("activate_grad", "grad", "1.0"),
        ] {
            source.push_str(&format!(
                "\nfn {function}(z: f32) -> f32 {{\n    switch ACTIVATION {{\n"
            ));
            for (index, (_, name, _)) in KERNELS.iter().enumerate() {
                source.push_str(&format!(
                    "        case {index}u: {{ return {name}_{suffix}(z); }}\n"
                ));
            }
            source.push_str(&format!(
                "        default: {{ return {otherwise}; }}\n    }}\n}}\n"
            ));
        }
        source
    })
}
