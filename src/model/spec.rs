//! The architecture of a model: its layers, and the tensors they own in order.

use super::batch_norm::BatchNorm;
use super::dropout::Dropout;
use super::layer::Layer;
use super::layer_norm::LayerNorm;
use super::tensor::TensorSpec;
use crate::activation::Activation;
use crate::error::{Error, Result};

/// What follows each hidden layer's `Linear`, before its activation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Norm {
    /// Nothing: the activation applies to the `Linear`'s output.
    #[default]
    None,
    /// `LayerNorm(width, eps)` ([`LayerNorm`]).
    Layer {
        /// `ε`, added to the variance.
        eps: f32,
    },
    /// `BatchNorm1d(width, eps, momentum)` ([`BatchNorm`]).
    Batch {
        /// `ε`, added to the variance.
        eps: f32,
        /// How far the running statistics move towards each batch's.
        momentum: f32,
    },
}

/// The architecture of a model: layers whose widths chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    layers: Vec<Layer>,
}

impl ModelSpec {
    /// A dense model from widths `[in, h1, ..., out]`: every hidden layer uses `hidden`, the
    /// last layer uses `output`. `[in, out]` is a single layer (linear or logistic regression).
    pub fn from_widths(widths: &[usize], hidden: Activation, output: Activation) -> Result<Self> {
        Self::mlp(widths, hidden, output, Norm::None, 0.0)
    }

    /// A model from widths `[in, h1, ..., out]` as [`ModelSpec::from_widths`], each hidden
    /// `Linear` followed by `norm`, then `hidden`, then (when `dropout` is above 0) dropout with
    /// probability `dropout`; the output layer has neither. A norm or dropout on a model with no
    /// hidden layer, and a probability outside `[0, 1]`, are errors.
    pub fn mlp(
        widths: &[usize],
        hidden: Activation,
        output: Activation,
        norm: Norm,
        dropout: f32,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&dropout) {
            return Err(Error::InvalidModel(format!(
                "dropout probability {dropout} is outside [0, 1]; give --dropout between 0 \
                 (none) and 1"
            )));
        }
        if widths.len() < 2 {
            return Err(Error::InvalidModel(format!(
                "need at least two widths (inputs and outputs), got {widths:?}"
            )));
        }
        if widths.len() == 2 && dropout > 0.0 {
            return Err(Error::InvalidModel(format!(
                "dropout follows each hidden layer, and {widths:?} has none; give --layers with \
                 a hidden width, or drop --dropout"
            )));
        }
        if widths.len() == 2 && norm != Norm::None {
            return Err(Error::InvalidModel(format!(
                "a norm follows each hidden layer, and {widths:?} has none; give --layers with \
                 a hidden width, or drop --norm"
            )));
        }
        let last = widths.len() - 2;
        let mut layers = Vec::new();
        for (i, pair) in widths.windows(2).enumerate() {
            match norm {
                Norm::Layer { eps } if i < last => {
                    layers.push(Layer::dense(pair[0], pair[1], Activation::Identity));
                    layers.push(Layer::LayerNorm(LayerNorm {
                        width: pair[1],
                        eps,
                        activation: hidden,
                    }));
                }
                Norm::Batch { eps, momentum } if i < last => {
                    layers.push(Layer::dense(pair[0], pair[1], Activation::Identity));
                    layers.push(Layer::BatchNorm(BatchNorm {
                        width: pair[1],
                        eps,
                        momentum,
                        activation: hidden,
                    }));
                }
                _ => layers.push(Layer::dense(
                    pair[0],
                    pair[1],
                    if i == last { output } else { hidden },
                )),
            }
            if i < last && dropout > 0.0 {
                layers.push(Layer::Dropout(Dropout {
                    width: pair[1],
                    p: dropout,
                }));
            }
        }
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
            if layer.inputs() == 0 || layer.outputs() == 0 {
                return Err(Error::InvalidModel(format!(
                    "layer {i} has a zero width ({} -> {}); every width must be at least 1",
                    layer.inputs(),
                    layer.outputs()
                )));
            }
            if let Some(next) = layers.get(i + 1)
                && next.inputs() != layer.outputs()
            {
                return Err(Error::InvalidModel(format!(
                    "layer {i} outputs {} values but layer {} expects {} inputs",
                    layer.outputs(),
                    i + 1,
                    next.inputs()
                )));
            }
        }
        Ok(Self { layers })
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The widths from input to output as `--layers` gives them: the input, then the output of
    /// each `Linear`.
    pub fn widths(&self) -> Vec<usize> {
        std::iter::once(self.inputs())
            .chain(
                self.layers
                    .iter()
                    .filter(|l| l.opens_block())
                    .map(Layer::outputs),
            )
            .collect()
    }

    /// The norm that follows its hidden layers.
    pub fn norm(&self) -> Norm {
        self.layers
            .iter()
            .find_map(|l| match l {
                Layer::LayerNorm(n) => Some(Norm::Layer { eps: n.eps }),
                Layer::BatchNorm(n) => Some(Norm::Batch {
                    eps: n.eps,
                    momentum: n.momentum,
                }),
                Layer::Dense(_) | Layer::Dropout(_) => None,
            })
            .unwrap_or_default()
    }

    /// The activation of its first hidden layer (after its norm, if any); the output layer's
    /// when it has no hidden layer.
    pub fn hidden_activation(&self) -> Activation {
        match self.layers.as_slice() {
            [_, Layer::LayerNorm(n), ..] => n.activation,
            [_, Layer::BatchNorm(n), ..] => n.activation,
            [first, ..] => first.activation(),
            [] => unreachable!("a model has at least one layer"),
        }
    }

    /// Input width of the first layer.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs()
    }

    /// Output width of the last layer.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs()
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

    /// Total number of scalar parameters, `Σ_tensors Π shape` over the tensors the optimizer
    /// trains (`Σ out·in + out` for a dense model; buffers not counted), saturating.
    pub fn parameter_count(&self) -> usize {
        self.tensors()
            .iter()
            .filter(|t| t.trained)
            .map(TensorSpec::len)
            .fold(0usize, usize::saturating_add)
    }

    /// Each layer's tensors, layer by layer, each named for its block: a layer that
    /// [opens a block](Layer::opens_block) takes the next block index `i` (`layers.{i}`), and
    /// the layers after it up to the next such layer share it.
    pub fn layer_tensors(&self) -> Vec<Vec<TensorSpec>> {
        self.layers
            .iter()
            .zip(self.blocks())
            .map(|(layer, block)| layer.tensors(block))
            .collect()
    }

    /// Each layer's block: a layer that [opens a block](Layer::opens_block) takes the next
    /// index from 0, and the layers after it share it.
    pub fn blocks(&self) -> Vec<usize> {
        let mut block = 0;
        self.layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                if layer.opens_block() && i > 0 {
                    block += 1;
                }
                block
            })
            .collect()
    }

    /// The dropout probability after its hidden layers (0 when there is none).
    pub fn dropout(&self) -> f32 {
        self.layers
            .iter()
            .find_map(|l| match l {
                Layer::Dropout(d) => Some(d.p),
                _ => None,
            })
            .unwrap_or(0.0)
    }

    /// Every tensor the model owns, in the order of [`Parameters::named_tensors`](super::Parameters::named_tensors): for a dense
    /// model `layers.{i}.weight` `[out, in]`, then `layers.{i}.bias` `[out]`, layer by layer.
    pub fn tensors(&self) -> Vec<TensorSpec> {
        self.layer_tensors().into_iter().flatten().collect()
    }

    /// The tensors the loss does not depend on in exact arithmetic: the bias of a `Linear`
    /// followed by a batch norm (which takes its shift back out), whose gradient is f32
    /// rounding noise, and that norm's running mean, which follows it. An adaptive optimizer's
    /// `g / (√v + ε)` turns the noise into steps, so two engines' values of these drift apart
    /// while every loss and every other tensor agree.
    pub fn free_tensors(&self) -> Vec<String> {
        let blocks = self.blocks();
        self.layers
            .windows(2)
            .zip(blocks)
            .filter(|(pair, _)| matches!(pair, [Layer::Dense(_), Layer::BatchNorm(_)]))
            .flat_map(|(_, block)| {
                [
                    format!("layers.{block}.bias"),
                    format!("norms.{block}.running_mean"),
                ]
            })
            .collect()
    }

    /// Whether it keeps running statistics (a batch norm), and so counts its training passes.
    pub fn has_running_statistics(&self) -> bool {
        self.layers.iter().any(|l| matches!(l, Layer::BatchNorm(_)))
    }

    /// Every tensor's name and shape, in [`ModelSpec::tensors`] order.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.tensors()
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect()
    }
}
