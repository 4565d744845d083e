//! Dense models: layers, activations, parameter names and PyTorch's default initialisation.
//!
//! A model is a sequence of layers `a_i = act_i(a_{i-1} · W_iᵀ + b_i)` with `a_{-1} = x`.
//! Parameters are laid out as PyTorch's `nn.Linear`: `layers.{i}.weight` of shape
//! `[out, in]` and `layers.{i}.bias` of shape `[out]`, f32, row-major.

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use crate::activation::{Activation, sigmoid};
use crate::error::{Error, Result};

/// One dense layer: `Linear(inputs, outputs)` followed by `activation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layer {
    /// Input width (`in_features`).
    pub inputs: usize,
    /// Output width (`out_features`).
    pub outputs: usize,
    /// Activation applied to the layer's output.
    pub activation: Activation,
}

impl Layer {
    /// The values a training step keeps per batch row for this layer, on either engine: its
    /// pre-activations `z`, activations `act(z)` and their gradients `δ`, `3·outputs`
    /// (saturating).
    pub fn values_per_row(&self) -> u64 {
        (self.outputs as u64).saturating_mul(3)
    }
}

/// The architecture of a dense model: layers whose widths chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    layers: Vec<Layer>,
}

impl ModelSpec {
    /// A model from widths `[in, h1, ..., out]`: every hidden layer uses `hidden`, the last
    /// layer uses `output`. `[in, out]` is a single layer (linear or logistic regression).
    pub fn from_widths(widths: &[usize], hidden: Activation, output: Activation) -> Result<Self> {
        if widths.len() < 2 {
            return Err(Error::InvalidModel(format!(
                "need at least two widths (inputs and outputs), got {widths:?}"
            )));
        }
        let last = widths.len() - 2;
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, pair)| Layer {
                inputs: pair[0],
                outputs: pair[1],
                activation: if i == last { output } else { hidden },
            })
            .collect();
        Self::new(layers)
    }

    /// A model from explicit layers; checks that widths are non-zero and chain.
    pub fn new(layers: Vec<Layer>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::InvalidModel(
                "a model needs at least one layer".into(),
            ));
        }
        for (i, layer) in layers.iter().enumerate() {
            if layer.inputs == 0 || layer.outputs == 0 {
                return Err(Error::InvalidModel(format!(
                    "layer {i} has a zero width ({} -> {}); every width must be at least 1",
                    layer.inputs, layer.outputs
                )));
            }
            if let Some(next) = layers.get(i + 1)
                && next.inputs != layer.outputs
            {
                return Err(Error::InvalidModel(format!(
                    "layer {i} outputs {} values but layer {} expects {} inputs",
                    layer.outputs,
                    i + 1,
                    next.inputs
                )));
            }
        }
        Ok(Self { layers })
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Input width of the first layer.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Output width of the last layer.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// Checks that `features` has one column per model input.
    pub fn check_features(&self, features: &ndarray::ArrayView2<'_, f32>) -> Result<()> {
        if features.ncols() != self.inputs() {
            return Err(Error::Shape {
                what: "features".into(),
                expected: format!("[rows, {}] (the first layer's input width)", self.inputs()),
                got: format!("{:?}", features.shape()),
            });
        }
        Ok(())
    }

    /// Total number of scalar parameters, `Σ_tensors Π shape` (`Σ out·in + out`), saturating.
    pub fn parameter_count(&self) -> usize {
        self.tensor_shapes()
            .iter()
            .map(|(_, shape)| shape.iter().fold(1usize, |n, &d| n.saturating_mul(d)))
            .fold(0usize, usize::saturating_add)
    }

    /// Every parameter tensor's name and shape, in the order of [`Parameters::named_tensors`]:
    /// `layers.{i}.weight` `[out, in]`, then `layers.{i}.bias` `[out]`, layer by layer.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                [
                    (weight_name(i), vec![l.outputs, l.inputs]),
                    (bias_name(i), vec![l.outputs]),
                ]
            })
            .collect()
    }
}

/// The parameters of one layer, in `nn.Linear` layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerParameters {
    /// `[out, in]`.
    pub weight: Array2<f32>,
    /// `[out]`.
    pub bias: Array1<f32>,
}

/// All parameters of a model (or anything shaped like them, such as gradients).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    /// One entry per layer, input first.
    pub layers: Vec<LayerParameters>,
}

impl Parameters {
    /// PyTorch's `nn.Linear` default initialisation, seeded: every weight and bias of layer
    /// `i` is drawn from `U(−1/√in_i, 1/√in_i)` (what `kaiming_uniform_(a=√5)` reduces to),
    /// layer by layer, weight (row-major) then bias, from a ChaCha8 stream seeded by `seed`.
    pub fn init(spec: &ModelSpec, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = spec
            .layers()
            .iter()
            .map(|layer| {
                let bound = 1.0 / (layer.inputs as f32).sqrt();
                let weight = Array2::from_shape_fn((layer.outputs, layer.inputs), |_| {
                    rng.random_range(-bound..bound)
                });
                let bias =
                    Array1::from_shape_fn(layer.outputs, |_| rng.random_range(-bound..bound));
                LayerParameters { weight, bias }
            })
            .collect();
        Self { layers }
    }

    /// Parameters for `spec` from each tensor's values, row-major, in
    /// [`ModelSpec::tensor_shapes`] order.
    ///
    /// # Panics
    /// Unless `values` holds exactly one vector per tensor, each as long as its shape holds (the
    /// callers build them from `spec`'s own list).
    pub fn from_values(spec: &ModelSpec, values: impl IntoIterator<Item = Vec<f32>>) -> Self {
        let mut values = values.into_iter();
        let mut checked = spec.tensor_shapes().into_iter().map(|(name, shape)| {
            let v = values
                .next()
                .unwrap_or_else(|| panic!("no values for `{name}`"));
            assert_eq!(
                v.len(),
                shape.iter().product::<usize>(),
                "`{name}` {shape:?}"
            );
            v
        });
        let layers = spec
            .layers()
            .iter()
            .map(|l| LayerParameters {
                weight: Array2::from_shape_vec(
                    (l.outputs, l.inputs),
                    checked.next().expect("a weight"),
                )
                .expect("checked against its shape"),
                bias: Array1::from_vec(checked.next().expect("a bias")),
            })
            .collect();
        assert!(values.next().is_none(), "more value vectors than tensors");
        Self { layers }
    }

    /// All zeros, shaped for `spec`.
    pub fn zeros(spec: &ModelSpec) -> Self {
        Self {
            layers: spec
                .layers()
                .iter()
                .map(|l| LayerParameters {
                    weight: Array2::zeros((l.outputs, l.inputs)),
                    bias: Array1::zeros(l.outputs),
                })
                .collect(),
        }
    }

    /// Checks that every tensor has the shape `spec` asks for, naming the first that does not.
    pub fn check_shapes(&self, spec: &ModelSpec) -> Result<()> {
        if self.layers.len() != spec.layers().len() {
            return Err(Error::Shape {
                what: "parameters".into(),
                expected: format!("{} layers", spec.layers().len()),
                got: format!("{} layers", self.layers.len()),
            });
        }
        for (i, (p, l)) in self.layers.iter().zip(spec.layers()).enumerate() {
            if p.weight.dim() != (l.outputs, l.inputs) {
                return Err(Error::Shape {
                    what: weight_name(i),
                    expected: format!("[{}, {}]", l.outputs, l.inputs),
                    got: format!("{:?}", p.weight.shape()),
                });
            }
            if p.bias.len() != l.outputs {
                return Err(Error::Shape {
                    what: bias_name(i),
                    expected: format!("[{}]", l.outputs),
                    got: format!("{:?}", p.bias.shape()),
                });
            }
        }
        Ok(())
    }

    /// Every tensor with its PyTorch name and shape, in order
    /// (`layers.0.weight`, `layers.0.bias`, `layers.1.weight`, ...).
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            out.push(NamedTensor {
                name: weight_name(i),
                shape: layer.weight.shape().to_vec(),
                values: layer.weight.iter().copied().collect(),
            });
            out.push(NamedTensor {
                name: bias_name(i),
                shape: vec![layer.bias.len()],
                values: layer.bias.to_vec(),
            });
        }
        out
    }

    /// Every tensor's values in row-major order, in [`Parameters::named_tensors`] order:
    /// borrowed where the tensor is laid out so, else copied.
    pub fn tensor_values(&self) -> Vec<std::borrow::Cow<'_, [f32]>> {
        use std::borrow::Cow;
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for layer in &self.layers {
            out.push(match layer.weight.as_slice() {
                Some(slice) => Cow::Borrowed(slice),
                None => Cow::Owned(layer.weight.iter().copied().collect()),
            });
            out.push(match layer.bias.as_slice() {
                Some(slice) => Cow::Borrowed(slice),
                None => Cow::Owned(layer.bias.iter().copied().collect()),
            });
        }
        out
    }

    /// The same parameters with every tensor in row-major order, so that tensors and anything
    /// kept per element beside them (optimizer state) index alike.
    pub fn standard_layout(&self) -> Parameters {
        let mut out = self.clone();
        out.tensors_mut();
        out
    }

    /// Every tensor's name and values in place (row-major), in [`Parameters::named_tensors`]
    /// order.
    pub fn tensors_mut(&mut self) -> Vec<(String, &mut [f32])> {
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if !layer.weight.is_standard_layout() {
                layer.weight = layer.weight.as_standard_layout().into_owned();
            }
            let weight = layer
                .weight
                .as_slice_mut()
                .expect("row-major after the copy");
            let bias = layer.bias.as_slice_mut().expect("a vector is contiguous");
            out.push((weight_name(i), weight));
            out.push((bias_name(i), bias));
        }
        out
    }
}

/// One parameter tensor with its name, values copied out in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// PyTorch name, such as `layers.0.weight`.
    pub name: String,
    /// Shape, such as `[out, in]`.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub values: Vec<f32>,
}

/// `layers.{i}.weight`.
pub fn weight_name(layer: usize) -> String {
    format!("layers.{layer}.weight")
}

/// `layers.{i}.bias`.
pub fn bias_name(layer: usize) -> String {
    format!("layers.{layer}.bias")
}
