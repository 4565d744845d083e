//! A model's parameters (or anything shaped like them, such as gradients): every tensor its
//! layers own, by name, in the model's order.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::spec::ModelSpec;
use super::tensor::NamedTensor;
use crate::error::{Error, Result};

/// Every tensor of a model, in [`ModelSpec::tensors`] order, values row-major: the parameters
/// the optimizer trains and the buffers the forward pass keeps (batch norm's running
/// statistics), with the count of training passes its batch norms have made (PyTorch's
/// `num_batches_tracked`; 0 for a model without batch norms, for gradients and for optimizer
/// state).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    tensors: Vec<NamedTensor>,
    batches_tracked: u64,
}

impl Parameters {
    /// Each tensor's initial values as its layer declares them, drawn tensor by tensor (values
    /// row-major) from one ChaCha8 stream seeded by `seed`. For dense layers this is PyTorch's
    /// `nn.Linear` default: every weight and bias of layer `i` from `U(−1/√in_i, 1/√in_i)`.
    pub fn init(spec: &ModelSpec, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let tensors = spec
            .tensors()
            .into_iter()
            .map(|t| NamedTensor {
                values: t.init.values(t.len(), &mut rng),
                name: t.name,
                shape: t.shape,
            })
            .collect();
        Self {
            tensors,
            batches_tracked: 0,
        }
    }

    /// Parameters for `spec` from each tensor's values, row-major, in [`ModelSpec::tensors`]
    /// order.
    ///
    /// # Panics
    /// Unless `values` holds exactly one vector per tensor, each as long as its shape holds (the
    /// callers build them from `spec`'s own list).
    pub fn from_values(spec: &ModelSpec, values: impl IntoIterator<Item = Vec<f32>>) -> Self {
        let mut values = values.into_iter();
        let tensors = spec
            .tensors()
            .into_iter()
            .map(|t| {
                let v = values
                    .next()
                    .unwrap_or_else(|| panic!("no values for `{}`", t.name));
                assert_eq!(v.len(), t.len(), "`{}` {:?}", t.name, t.shape);
                NamedTensor {
                    name: t.name,
                    shape: t.shape,
                    values: v,
                }
            })
            .collect();
        assert!(values.next().is_none(), "more value vectors than tensors");
        Self {
            tensors,
            batches_tracked: 0,
        }
    }

    /// All zeros, shaped for `spec`.
    pub fn zeros(spec: &ModelSpec) -> Self {
        Self::from_values(spec, spec.tensors().iter().map(|t| vec![0.0; t.len()]))
    }

    /// Checks that the tensors are the ones `spec` asks for, in its order and shapes, naming
    /// the first that is not.
    pub fn check_shapes(&self, spec: &ModelSpec) -> Result<()> {
        let expected = spec.tensors();
        if self.tensors.len() != expected.len() {
            return Err(Error::Shape {
                what: "parameters".into(),
                expected: format!("{} tensors", expected.len()),
                got: format!("{} tensors", self.tensors.len()),
            });
        }
        for (t, e) in self.tensors.iter().zip(&expected) {
            if t.name != e.name {
                return Err(Error::Shape {
                    what: "parameters".into(),
                    expected: format!("a tensor `{}`", e.name),
                    got: format!("`{}`", t.name),
                });
            }
            if t.shape != e.shape {
                return Err(Error::Shape {
                    what: e.name.clone(),
                    expected: format!("{:?}", e.shape),
                    got: format!("{:?}", t.shape),
                });
            }
        }
        Ok(())
    }

    /// Every tensor with its PyTorch name and shape, in order (`layers.0.weight`,
    /// `layers.0.bias`, `layers.1.weight`, ...).
    pub fn named_tensors(&self) -> &[NamedTensor] {
        &self.tensors
    }

    /// Each of `spec`'s layers' own tensors, input layer first.
    pub fn by_layer(&self, spec: &ModelSpec) -> Vec<&[NamedTensor]> {
        let mut rest = self.tensors.as_slice();
        spec.layers()
            .iter()
            .map(|layer| {
                let (own, after) = rest.split_at(layer.tensor_count());
                rest = after;
                own
            })
            .collect()
    }

    /// The training passes its batch norms have counted (PyTorch's `num_batches_tracked`).
    pub fn batches_tracked(&self) -> u64 {
        self.batches_tracked
    }

    /// Sets the count of training passes.
    pub fn set_batches_tracked(&mut self, count: u64) {
        self.batches_tracked = count;
    }

    /// The tensor named `name`, if the model has it.
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The values of the tensor named `name`, in place, if the model has it.
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut [f32]> {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name)
            .map(|t| t.values.as_mut_slice())
    }

    /// Every tensor's values, in [`Parameters::named_tensors`] order.
    pub fn tensor_values(&self) -> Vec<&[f32]> {
        self.tensors.iter().map(|t| t.values.as_slice()).collect()
    }

    /// Tensor `index` (in [`ModelSpec::tensors`] order) takes `values` as its own, moved in
    /// rather than copied.
    ///
    /// # Panics
    /// If `values` is not as long as the tensor, which is a bug in the caller.
    pub fn replace_values(&mut self, index: usize, values: Vec<f32>) {
        let tensor = &mut self.tensors[index];
        assert_eq!(
            values.len(),
            tensor.values.len(),
            "{}'s values",
            tensor.name
        );
        tensor.values = values;
    }

    /// Every tensor, values in place (their names and shapes are the model's and stay so).
    pub fn tensors_mut(&mut self) -> impl Iterator<Item = (&str, &mut [f32])> {
        self.tensors
            .iter_mut()
            .map(|t| (t.name.as_str(), t.values.as_mut_slice()))
    }
}
