//! What every kind of layer's forward and backward pass returns on the CPU engine.

use ndarray::Array2;

/// What one layer's forward pass keeps for its backward pass, and its output.
#[derive(Debug, Clone)]
pub struct LayerOutputs {
    /// The pre-activation `z`.
    pub pre: Array2<f32>,
    /// The activation `act(z)`: the layer's output.
    pub post: Array2<f32>,
    /// What else its backward pass reads (dropout's multipliers), if anything.
    pub saved: Option<Array2<f32>>,
}

/// One layer's backward pass: its tensors' gradients (in its tensors' order) and, when asked
/// for, `∂L/∂input`.
pub type LayerGradients = (Vec<Vec<f32>>, Option<Array2<f32>>);
