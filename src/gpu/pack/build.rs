//! Building a GPU pack: every buffer, uniform, bind group and pipeline it will use, created
//! once, and the dispatches of a training step recorded layer by layer.

use super::*;

impl GpuPack {
    pub(super) fn build(ctx: &GpuContext, setup: PackSetup, max_batch: usize) -> Result<Self> {
        let limits = ctx.limits();
        let model = &setup.model;
        let layers = model.layers();
        let last = layers.len() - 1;
        let models = setup.members.len();
        let count = models as u64;
        let batch = max_batch as u64;
        let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let (layers_hint, batch_hint) = if models > 1 {
            (PACK_HINT, PACK_BATCH_HINT)
        } else {
            (LAYERS_HINT, BATCH_HINT)
        };

        let layout = FlatLayout::new(model, u64::from(limits.min_storage_buffer_offset_alignment));
        let stride = layout.total;
        // A tensor binding spans that tensor in every model.
        let span = |len: u64| (count - 1) * stride + len;
        // Biases are bound whole; weights in blocks of rows that each fit a binding.
        for t in layout.tensors.iter().skip(1).step_by(2) {
            ctx.check_fits(&t.name, span(t.len) * 4, true, layers_hint)?;
        }
        let blocks: Vec<Vec<(usize, usize)>> = layers
            .iter()
            .zip(layout.tensors.iter().step_by(2))
            .map(|(layer, weight)| {
                ctx.check_fits(&weight.name, span(weight.len) * 4, false, layers_hint)?;
                row_blocks(layer, weight, (count - 1) * stride, layout.align, limits).ok_or_else(
                    || Error::BufferTooLarge {
                        tensor: if count > 1 {
                            format!("one row of {} in every model", weight.name)
                        } else {
                            format!("one row of {}", weight.name)
                        },
                        bytes: span(layer.inputs as u64) * 4,
                        limit_name: "max_storage_buffer_binding_size",
                        limit: limits.max_storage_buffer_binding_size,
                        hint: layers_hint,
                    },
                )
            })
            .collect::<Result<_>>()?;
        let flat_bytes = count * stride * 4;
        let flat = |name: &str| -> Result<wgpu::Buffer> {
            ctx.check_fits(name, flat_bytes, false, layers_hint)?;
            Ok(ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: flat_bytes,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            }))
        };
        let params_buffer = flat("parameters (all layers, one flat buffer)")?;
        let grads = flat("gradients")?;
        // The state slots any member uses, each starting at that member's initial value.
        let mut state: Vec<(usize, wgpu::Buffer)> = Vec::new();
        for (k, member) in setup.members.iter().enumerate() {
            for slot in member.optimizer.state_slots() {
                if !state.iter().any(|(index, _)| *index == slot.index) {
                    let buffer = flat(&format!("optimizer state `{}`", slot.name))?;
                    state.push((slot.index, buffer));
                }
                if slot.initial != 0.0 {
                    let (_, buffer) = state
                        .iter()
                        .find(|(index, _)| *index == slot.index)
                        .expect("allocated above");
                    let values = vec![slot.initial; stride as usize];
                    ctx.queue.write_buffer(
                        buffer,
                        k as u64 * stride * 4,
                        bytemuck::cast_slice(&values),
                    );
                }
            }
        }
        state.sort_by_key(|(index, _)| *index);

        let storage = |name: String, elements: u64| {
            ctx.storage_buffer(&name, elements * 4, usage, batch_hint)
        };
        let input = storage(
            format!("input batch [{max_batch}, {}]", model.inputs()),
            batch * model.inputs() as u64,
        )?;
        let per_models = |shape: String| {
            if models > 1 {
                format!("{shape} × {models} models")
            } else {
                shape
            }
        };
        let mut res = Resources {
            pre: Vec::new(),
            post: Vec::new(),
            delta: Vec::new(),
            row_loss: storage(
                per_models(format!("per-row losses [{max_batch}]")),
                count * batch,
            )?,
            row_correct: storage(
                per_models(format!("per-row accuracy [{max_batch}]")),
                count * batch,
            )?,
            dummy_read: storage("unused".into(), 4)?,
            dummy_write: storage("unused".into(), 4)?,
        };
        for (i, layer) in layers.iter().enumerate() {
            let n = count * batch * layer.outputs as u64;
            let shape = per_models(format!("[{max_batch}, {}]", layer.outputs));
            res.pre
                .push(storage(format!("pre-activations of layer {i} {shape}"), n)?);
            res.post
                .push(storage(format!("activations of layer {i} {shape}"), n)?);
            res.delta.push(storage(
                format!("gradients of layer {i}'s outputs {shape}"),
                n,
            )?);
        }
        let outputs = model.outputs() as u64;
        let dense_targets = storage(format!("targets [{max_batch}, {outputs}]"), batch * outputs)?;
        let class_targets = storage(format!("class targets [{max_batch}]"), batch)?;
        let metrics_train = storage("training metrics".into(), METRICS_WORDS * count)?;
        let metrics_eval = storage("evaluation metrics".into(), METRICS_WORDS * count)?;
        let indices = storage(format!("batch row indices [{max_batch}]"), batch)?;
        let clip_scale = storage("gradient clipping scale".into(), count)?;
        ctx.queue
            .write_buffer(&clip_scale, 0, bytemuck::cast_slice(&vec![1.0f32; models]));
        let uniform = |label: &str| {
            ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let clip_params = uniform("gradient clipping parameters");
        let gather_dims = uniform("gather shape");
        let coefficients = storage(
            "optimizer coefficients".into(),
            count * MAX_UNIFORM_BYTES / 4,
        )?;

        let kernels = ctx.kernels();
        let mut shapes = Vec::new();
        // Every dispatch has its own shape uniform; count them first to size the block.
        let products: usize = blocks.iter().map(Vec::len).sum();
        let uniform_slots = 3 * products + layers.len() + 1;
        let dims = UniformBlock::new(
            ctx,
            "dispatch shapes",
            uniform_slots,
            MAX_UNIFORM_BYTES,
            u64::from(limits.min_uniform_buffer_offset_alignment),
        );
        let mut add_shape = |shape: Shape| {
            shapes.push(shape);
            shapes.len() - 1
        };
        let shape_binding = |slot: usize, shape: &Shape| {
            let bytes = match shape {
                Shape::Matmul(_) => std::mem::size_of::<MatmulDims>(),
                Shape::Loss(_) => std::mem::size_of::<LossDims>(),
                Shape::Columns(_) => std::mem::size_of::<ReduceDims>(),
            };
            dims.binding(slot, bytes as u64)
        };
        let weight = |i: usize| &layout.tensors[2 * i];
        let bias = |i: usize| &layout.tensors[2 * i + 1];
        let fixed = |n: usize| Extent::Fixed(n as u32);
        // Elements between consecutive models: a whole model's parameters, or a batch-sized
        // buffer of `width` columns; the input batch is shared.
        let params_stride = stride as u32;
        let rows_stride = |width: usize| (max_batch * width) as u32;
        let source_stride = |i: usize| {
            if i == 0 {
                0
            } else {
                rows_stride(layers[i - 1].outputs)
            }
        };

        // Each product as the tuner sees it: vec4 reads where every size and offset they cross
        // allows, and the tile chosen for the largest batch.
        let product = |variant: MatmulVariant, shape: &MatmulShape, training: bool| Product {
            variant,
            shape: shape.largest(max_batch),
            vec4: shape.vec4(variant).operands,
            models,
            training,
        };
        // Each product's launch, in the tile the context's tuning chose (settled below, before
        // the first product is built).
        let matmul = |variant: MatmulVariant,
                      shape: &MatmulShape,
                      training: bool,
                      resources: [wgpu::BindingResource<'_>; 6]|
         -> Result<Dispatch> {
            let tile = ctx.product_tile(&product(variant, shape, training))?;
            Ok(kernels.matmul.dispatch(variant, tile, shape, resources))
        };
        // The products of a step, layer by layer: forward a_i = act_i(a_{i-1} · W_iᵀ + b_i)
        // per block of W_i's rows (the block's columns of a_i); backward, last layer first,
        // ∂L/∂W_i per block (M = r1 - r0, N = in, K = batch) and δ_{i-1} summed over the blocks
        // (M = batch, N = in, K = r1 - r0).
        let forward_variant = |i: usize| MatmulVariant {
            transpose_a: false,
            transpose_b: true,
            epilogue: Epilogue::BiasActivation,
            activation: layers[i].activation,
        };
        let forward_shape = |i: usize, (r0, r1): (usize, usize)| MatmulShape {
            m: Extent::Batch,
            n: fixed(r1 - r0),
            k: fixed(layers[i].inputs),
            strides: [
                source_stride(i),
                params_stride,
                rows_stride(layers[i].outputs),
                params_stride,
            ],
            lda: layers[i].inputs as u32,
            offset_a: 0,
            ldc: layers[i].outputs as u32,
            offset_c: r0 as u32,
        };
        let weight_grad = MatmulVariant {
            transpose_a: true,
            transpose_b: false,
            epilogue: Epilogue::Plain,
            activation: Activation::Identity,
        };
        let weight_grad_accumulate = MatmulVariant {
            epilogue: Epilogue::Accumulate,
            ..weight_grad
        };
        let weight_grad_shape = |i: usize, (r0, r1): (usize, usize)| MatmulShape {
            m: fixed(r1 - r0),
            n: fixed(layers[i].inputs),
            k: Extent::Batch,
            strides: [
                rows_stride(layers[i].outputs),
                source_stride(i),
                params_stride,
                0,
            ],
            lda: layers[i].outputs as u32,
            offset_a: r0 as u32,
            ldc: layers[i].inputs as u32,
            offset_c: 0,
        };
        // The first block writes, the others add, the last applies act'.
        let input_grad_variant = |i: usize, b: usize| MatmulVariant {
            transpose_a: false,
            transpose_b: false,
            epilogue: match (b == 0, b + 1 == blocks[i].len()) {
                (true, true) => Epilogue::ActivationGrad,
                (true, false) => Epilogue::Plain,
                (false, false) => Epilogue::Accumulate,
                (false, true) => Epilogue::AccumulateActivationGrad,
            },
            activation: layers[i - 1].activation,
        };
        let input_grad_shape = |i: usize, (r0, r1): (usize, usize)| MatmulShape {
            m: Extent::Batch,
            n: fixed(layers[i].inputs),
            k: fixed(r1 - r0),
            strides: [
                rows_stride(layers[i].outputs),
                params_stride,
                rows_stride(layers[i].inputs),
                rows_stride(layers[i].inputs),
            ],
            lda: layers[i].outputs as u32,
            offset_a: r0 as u32,
            ldc: layers[i].inputs as u32,
            offset_c: 0,
        };
        // Every product is tuned before any is built, so that progress can count them.
        let mut products = Vec::new();
        for (i, layer_blocks) in blocks.iter().enumerate() {
            for &block in layer_blocks {
                products.push(product(forward_variant(i), &forward_shape(i, block), false));
            }
        }
        for i in (0..layers.len()).rev() {
            for &block in &blocks[i] {
                products.push(product(weight_grad, &weight_grad_shape(i, block), true));
            }
            for (b, &block) in blocks[i].iter().enumerate().filter(|_| i > 0) {
                let variant = input_grad_variant(i, b);
                products.push(product(variant, &input_grad_shape(i, block), true));
            }
        }
        ctx.tune(&products)?;
        // Rows r0..r1 of layer i's weights (or their gradients) in `buffer`.
        let weight_rows = |buffer, i: usize, (r0, r1): (usize, usize)| {
            let inputs = layers[i].inputs as u64;
            range(
                buffer,
                weight(i).offset + r0 as u64 * inputs,
                span((r1 - r0) as u64 * inputs),
            )
        };

        // Forward, one product per block of W_i's rows.
        let mut forward = Vec::new();
        for (i, layer_blocks) in blocks.iter().enumerate() {
            for &(r0, r1) in layer_blocks {
                let shape = forward_shape(i, (r0, r1));
                let slot = add_shape(Shape::Matmul(shape));
                let source = if i == 0 { &input } else { &res.post[i - 1] };
                forward.push(matmul(
                    forward_variant(i),
                    &shape,
                    false,
                    [
                        source.as_entire_binding(),
                        weight_rows(&params_buffer, i, (r0, r1)),
                        range(&params_buffer, bias(i).offset, span(bias(i).len)),
                        res.post[i].as_entire_binding(),
                        res.pre[i].as_entire_binding(),
                        shape_binding(slot, &Shape::Matmul(shape)),
                    ],
                )?);
            }
        }
        // Loss and ∂L/∂z of the output layer, then the mean loss: into the training metrics, or
        // the evaluation metrics.
        let loss_shape = Shape::Loss(LossShape {
            loss: setup.loss,
            cols: model.outputs(),
            max_batch,
        });
        let slot = add_shape(loss_shape);
        let loss_dispatches = |metrics: &wgpu::Buffer| {
            kernels
                .loss
                .dispatches(
                    setup.loss,
                    layers[last].activation,
                    [
                        res.post[last].as_entire_binding(),
                        res.pre[last].as_entire_binding(),
                        dense_targets.as_entire_binding(),
                        class_targets.as_entire_binding(),
                        res.delta[last].as_entire_binding(),
                        res.row_loss.as_entire_binding(),
                        shape_binding(slot, &loss_shape),
                        res.row_correct.as_entire_binding(),
                        metrics.as_entire_binding(),
                    ],
                )
                .to_vec()
        };
        let loss_train = loss_dispatches(&metrics_train);
        let loss_eval = loss_dispatches(&metrics_eval);

        let mut backward = Vec::new();
        let mut backward_accumulate = Vec::new();

        // Backward, last layer first, each product per block of W_i's rows.
        for i in (0..layers.len()).rev() {
            let layer = layers[i];
            let source = if i == 0 { &input } else { &res.post[i - 1] };
            // ∂L/∂W_i[r0..r1] = δ_i[:, r0..r1]ᵀ · a_{i-1}: M = r1 - r0, N = in, K = batch,
            // written into the gradients, or (a group's later batches) added to them.
            for &(r0, r1) in &blocks[i] {
                let shape = weight_grad_shape(i, (r0, r1));
                let slot = add_shape(Shape::Matmul(shape));
                let resources = || {
                    [
                        res.delta[i].as_entire_binding(),
                        source.as_entire_binding(),
                        res.dummy_read.as_entire_binding(),
                        weight_rows(&grads, i, (r0, r1)),
                        res.dummy_write.as_entire_binding(),
                        shape_binding(slot, &Shape::Matmul(shape)),
                    ]
                };
                backward.push(matmul(weight_grad, &shape, true, resources())?);
                backward_accumulate.push(matmul(
                    weight_grad_accumulate,
                    &shape,
                    true,
                    resources(),
                )?);
            }
            // ∂L/∂b_i = Σ_rows δ_i.
            let columns = ColumnsShape {
                cols: layer.outputs as u32,
                stride_in: rows_stride(layer.outputs),
                stride_out: params_stride,
            };
            let slot = add_shape(Shape::Columns(columns));
            for (accumulate, list) in [(false, &mut backward), (true, &mut backward_accumulate)] {
                list.push(kernels.reduce.dispatch(
                    &columns,
                    accumulate,
                    [
                        res.delta[i].as_entire_binding(),
                        range(&grads, bias(i).offset, span(bias(i).len)),
                        shape_binding(slot, &Shape::Columns(columns)),
                    ],
                ));
            }
            if i == 0 {
                continue;
            }
            // δ_{i-1} = (Σ_blocks δ_i[:, r0..r1] · W_i[r0..r1]) ⊙ act'_{i-1}(z_{i-1}): M = batch,
            // N = in, K = r1 - r0; the first block writes, the others add, the last applies act'.
            for (b, &(r0, r1)) in blocks[i].iter().enumerate() {
                let shape = input_grad_shape(i, (r0, r1));
                let slot = add_shape(Shape::Matmul(shape));
                let dispatch = matmul(
                    input_grad_variant(i, b),
                    &shape,
                    true,
                    [
                        res.delta[i].as_entire_binding(),
                        weight_rows(&params_buffer, i, (r0, r1)),
                        res.pre[i - 1].as_entire_binding(),
                        res.delta[i - 1].as_entire_binding(),
                        res.dummy_write.as_entire_binding(),
                        shape_binding(slot, &Shape::Matmul(shape)),
                    ],
                )?;
                backward_accumulate.push(dispatch.clone());
                backward.push(dispatch);
            }
        }
        debug_assert!(shapes.len() <= uniform_slots);

        let mut unused_state = Vec::new();
        for slot in 0..MAX_STATE_SLOTS {
            if !state.iter().any(|(index, _)| *index == slot) {
                unused_state.push(storage("unused optimizer state".into(), 4)?);
            }
        }

        // Clipping by global norm over (the first binding's worth of) the flat gradients;
        // recorded only when clipping is on, and refused there for larger packs.
        let clip_len = (count * stride).min(limits.max_storage_buffer_binding_size / 4);
        let clip = kernels.clip.dispatch([
            range(&grads, 0, clip_len),
            clip_scale.as_entire_binding(),
            clip_params.as_entire_binding(),
        ]);

        let mut pack = Self {
            ctx: ctx.clone(),
            models,
            max_batch,
            params: params_buffer,
            grads,
            input,
            dense_targets,
            class_targets,
            output: res.post[last].clone(),
            shapes,
            dims,
            coefficients,
            coefficient_bytes: Vec::new(),
            forward,
            loss_train,
            loss_eval,
            backward,
            backward_accumulate,
            clip,
            update: Vec::new(),
            unused_state,
            lrs: setup.members.iter().map(|m| m.optimizer.lr()).collect(),
            frozen: vec![false; models],
            clip_norm: None,
            clip_chunked: Vec::new(),
            clip_scale,
            clip_params,
            metrics_train,
            metrics_eval,
            state,
            indices,
            gather_dims,
            resident: None,
            timing: None,
            profile: None,
            current: None,
            steps: 0,
            layout,
            setup,
        };
        pack.record_update();
        for k in 0..models {
            pack.write_parameters(k, &pack.setup.members[k].parameters);
        }
        Ok(pack)
    }
}
