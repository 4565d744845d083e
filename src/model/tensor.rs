//! One tensor of a model: how a layer declares it ([`TensorSpec`]: name, shape, initial
//! values) and its values ([`NamedTensor`]).

use ndarray::ArrayViewD;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a tensor's initial values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Every value from `U(−bound, bound)`, row-major, from the model's one seeded stream.
    Uniform(f32),
    /// Every value equal to this one (draws nothing from the stream).
    Constant(f32),
}

impl Init {
    /// `len` initial values, drawing from `rng` in row-major order where the rule draws.
    pub fn values(&self, len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        match *self {
            Init::Uniform(bound) => (0..len).map(|_| rng.random_range(-bound..bound)).collect(),
            Init::Constant(value) => vec![value; len],
        }
    }
}

/// A tensor a layer owns: its PyTorch name, shape and initial values.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// PyTorch name, such as `layers.0.weight`.
    pub name: String,
    /// Shape, such as `[out, in]`.
    pub shape: Vec<usize>,
    /// How its initial values are drawn.
    pub init: Init,
    /// Whether the optimizer trains it (a parameter), or the forward pass keeps it (a buffer,
    /// such as batch norm's running statistics: no gradient, no update, no weight decay).
    pub trained: bool,
}

impl TensorSpec {
    /// Elements, `Π shape`, saturating.
    pub fn len(&self) -> usize {
        self.shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One tensor with its name and shape, its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// PyTorch name, such as `layers.0.weight`.
    pub name: String,
    /// Shape, such as `[out, in]`.
    pub shape: Vec<usize>,
    /// Values in row-major order, `Π shape` of them.
    pub values: Vec<f32>,
}

impl NamedTensor {
    /// The values as an array of the tensor's shape.
    pub fn view(&self) -> ArrayViewD<'_, f32> {
        ArrayViewD::from_shape(self.shape.as_slice(), &self.values)
            .expect("a named tensor holds Π shape values")
    }
}
