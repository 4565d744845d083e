//! A kernel's bindings, declared once: each op lists its bindings (name and kind, in binding
//! order) in one constant, from which both its bind group layout and every bind group it is
//! given are built; a bind group takes exactly as many resources as the declaration has
//! entries, or it does not compile. A test reads each op's WGSL and checks that its
//! `@group(0) @binding(i)` declarations are the op's, in order and kind.

use std::num::NonZeroU64;

/// How a kernel reads a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
    /// `var<uniform>`.
    Uniform,
}

/// One binding of a kernel: its name in the WGSL and how the kernel reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The variable's name in the WGSL source.
    pub name: &'static str,
    /// How it is declared.
    pub kind: Kind,
}

/// `name`, read only.
pub(crate) const fn read(name: &'static str) -> Binding {
    Binding {
        name,
        kind: Kind::Read,
    }
}

/// `name`, read and written.
pub(crate) const fn read_write(name: &'static str) -> Binding {
    Binding {
        name,
        kind: Kind::ReadWrite,
    }
}

/// `name`, a uniform block.
pub(crate) const fn uniform(name: &'static str) -> Binding {
    Binding {
        name,
        kind: Kind::Uniform,
    }
}

/// The bind group layout of `N` declared bindings at 0, 1, …, N−1, and the bind groups made
/// from it.
pub(crate) struct BindingSet<const N: usize> {
    device: wgpu::Device,
    label: &'static str,
    layout: wgpu::BindGroupLayout,
}

impl<const N: usize> BindingSet<N> {
    /// The layout of `bindings` (binding `i` is `bindings[i]`), visible to compute shaders.
    pub fn new(device: &wgpu::Device, label: &'static str, bindings: &[Binding; N]) -> Self {
        let entries: Vec<_> = bindings
            .iter()
            .enumerate()
            .map(|(i, binding)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match binding.kind {
                        Kind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Kind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                        Kind::Uniform => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        });
        Self {
            device: device.clone(),
            label,
            layout,
        }
    }

    /// The bind group layout.
    pub fn layout(&self) -> &wgpu::BindGroupLayout {
        &self.layout
    }

    /// A bind group of `resources`, `resources[i]` at binding `i`.
    pub fn bind(&self, resources: [wgpu::BindingResource<'_>; N]) -> wgpu::BindGroup {
        let entries: Vec<_> = resources
            .into_iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.label),
            layout: &self.layout,
            entries: &entries,
        })
    }
}

/// A binding of `len` f32 elements of `buffer` from element `offset` (at least one element).
pub(crate) fn range(buffer: &wgpu::Buffer, offset: u64, len: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: offset * 4,
        size: NonZeroU64::new(len.max(1) * 4),
    })
}

/// The `@group(0) @binding(i) var<…> name` declarations of a WGSL source, as
/// `(i, Binding)` in the order they appear.
#[cfg(test)]
pub(crate) fn declared(source: &str) -> Vec<(u32, Binding)> {
    let mut found = Vec::new();
    for line in source.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("@group(0) @binding(") else {
            continue;
        };
        let (index, rest) = rest.split_once(')').expect("a closing parenthesis");
        let index: u32 = index.parse().expect("a binding number");
        let rest = rest.trim().strip_prefix("var<").expect("a var declaration");
        let (space, rest) = rest.split_once('>').expect("an address space");
        let kind = match space.replace(' ', "").as_str() {
            "storage,read" | "storage" => Kind::Read,
            "storage,read_write" => Kind::ReadWrite,
            "uniform" => Kind::Uniform,
            other => panic!("an unknown address space `{other}` in `{line}`"),
        };
        let name = rest.split(':').next().unwrap_or_default().trim();
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        found.push((index, Binding { name, kind }));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_is_read_with_its_kind() {
        let source = "@group(0) @binding(2) var<storage, read_write> sums: array<f32>; // x\n\
                      // @group(0) @binding(9) var<uniform> commented: Dims;\n\
                      @group(0) @binding(0) var<uniform> dims: Dims;";
        assert_eq!(
            declared(source),
            vec![(2, read_write("sums")), (0, uniform("dims"))]
        );
    }
}
