//! What every kind of layer's forward and backward pass returns on the CPU engine.

use ndarray::{Array1, Array2};

/// What a layer's forward pass keeps for its backward pass besides its input and output.
#[derive(Debug, Clone)]
pub enum Saved {
    /// Dropout's multipliers, `1/(1 − p)` or 0 per element.
    Multipliers(Array2<f32>),
    /// A training batch norm's batch mean and biased variance per column.
    BatchStatistics {
        /// `μ_c`.
        mean: Array1<f32>,
        /// `σ²_c`, divided by the rows.
        var: Array1<f32>,
    },
}

/// What one layer's forward pass keeps for its backward pass, and its output.
#[derive(Debug, Clone)]
pub struct LayerOutputs {
    /// The pre-activation `z`.
    pub pre: Array2<f32>,
    /// The activation `act(z)`: the layer's output.
    pub post: Array2<f32>,
    /// What else its backward pass reads, if anything.
    pub saved: Option<Saved>,
}

/// One layer's backward pass: its tensors' gradients (in its tensors' order) and, when asked
/// for, `∂L/∂input`.
pub type LayerGradients = (Vec<Vec<f32>>, Option<Array2<f32>>);
