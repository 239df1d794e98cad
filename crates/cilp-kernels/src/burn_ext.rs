//! The convolution kernels of [`crate::conv`] plugged into burn as a backend extension: a
//! forward op on the flex backend, and on `Autodiff<Flex>` the same forward plus a hand-written
//! backward that computes the input, weight and bias gradients in one pass.

use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Backend, Flex, backend_extension, tensor::FloatTensor};
use std::sync::Arc;

use burn::backend::autodiff::NodeId;
use burn::tensor::{Bytes, DType, Shape};

use crate::conv::{self, Conv2dDims, SavedInput, Wanted};
use crate::gemm_isa::Pass;
use crate::linear::{self, LinearDims};

/// Hyper-parameters of [`FastConvBackend::cilp_conv2d`] (stride and symmetric padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

#[backend_extension(Flex, Autodiff)]
pub trait FastConvBackend: Backend {
    /// 2-D convolution with bias: `x [B, Cin, H, W]`, `weight [Cout, Cin, kh, kw]`,
    /// `bias [Cout]` -> `[B, Cout, Hout, Wout]`. f32 only, groups 1, dilation 1.
    fn cilp_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, params: ConvParams) -> FloatTensor<Self>;

    /// `ReLU(conv2d(x) + bias)` in one op: `[B, Cout, Hout, Wout]`. The backward pass keeps the
    /// output (which the next layer holds anyway) as the ReLU's mask.
    fn cilp_conv2d_relu(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, params: ConvParams) -> FloatTensor<Self>;

    /// `MaxPool2d(2)(ReLU(conv2d(x) + bias))` in one op: `[B, Cout, Hout/2, Wout/2]`. The
    /// full-resolution activation is never stored; the backward pass keeps one byte per output.
    fn cilp_conv2d_relu_maxpool(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self>;
}

/// A contiguous f32 view of a flex tensor (copying only when the layout is strided).
struct F32View(FlexTensor);

impl F32View {
    fn new(t: &FlexTensor) -> F32View {
        assert_eq!(t.dtype(), DType::F32, "cilp_conv2d: f32 tensors only, got {:?}", t.dtype());
        F32View(if t.layout().contiguous_offsets().is_some() { t.clone() } else { t.to_contiguous() })
    }
    fn slice(&self) -> &[f32] {
        let (start, end) = self.0.layout().contiguous_offsets().expect("contiguous after copy");
        &self.0.storage::<f32>()[start..end]
    }
    fn dims(&self) -> Vec<usize> {
        self.0.layout().shape().to_vec()
    }
}

fn flex_tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(Shape::from(shape)), DType::F32)
}

/// The dims of a convolution from its input and weight shapes.
fn dims_of(x: &[usize], w: &[usize], params: ConvParams) -> Conv2dDims {
    assert!(x.len() == 4 && w.len() == 4, "cilp_conv2d: expected 4-d input and weight, got {x:?} and {w:?}");
    assert_eq!(x[1], w[1], "cilp_conv2d: input has {} channels, weight expects {}", x[1], w[1]);
    Conv2dDims {
        batch: x[0],
        c_in: x[1],
        h: x[2],
        w: x[3],
        c_out: w[0],
        kh: w[2],
        kw: w[3],
        stride: params.stride,
        padding: params.padding,
    }
}

fn forward(pass: Pass, x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor, params: ConvParams) -> FlexTensor {
    let (xv, wv, bv) = (F32View::new(x), F32View::new(weight), F32View::new(bias));
    let d = dims_of(&xv.dims(), &wv.dims(), params);
    let y = conv::conv2d_forward_for(pass, xv.slice(), wv.slice(), Some(bv.slice()), &d);
    flex_tensor(y, vec![d.batch, d.c_out, d.out_h(), d.out_w()])
}

/// The fused conv + ReLU forward pass; in training it keeps a Winograd pass's transformed input
/// for the backward pass's weight gradient (kept even where the weight is frozen: the op cannot
/// see which of its inputs are tracked; memory only, 2.25 values per input value in F(4x4)).
fn forward_relu(
    pass: Pass,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    params: ConvParams,
) -> (FlexTensor, Option<Arc<SavedInput>>) {
    let (xv, wv, bv) = (F32View::new(x), F32View::new(weight), F32View::new(bias));
    let d = dims_of(&xv.dims(), &wv.dims(), params);
    let (y, saved) = match pass {
        Pass::Train => conv::conv2d_relu_forward_train(xv.slice(), wv.slice(), bv.slice(), &d),
        Pass::Infer => (conv::conv2d_relu_forward_for(pass, xv.slice(), wv.slice(), bv.slice(), &d), None),
    };
    (flex_tensor(y, vec![d.batch, d.c_out, d.out_h(), d.out_w()]), saved.map(Arc::new))
}

/// The fused conv + ReLU + MaxPool forward pass and its argmax codes; in training, also the
/// transformed input, as [`forward_relu`].
fn forward_relu_pool(
    pass: Pass,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    params: ConvParams,
) -> (FlexTensor, Vec<u8>, Option<Arc<SavedInput>>) {
    let (xv, wv, bv) = (F32View::new(x), F32View::new(weight), F32View::new(bias));
    let d = dims_of(&xv.dims(), &wv.dims(), params);
    let (out, saved) = match pass {
        Pass::Train => conv::conv2d_relu_maxpool_forward_train(xv.slice(), wv.slice(), bv.slice(), &d),
        Pass::Infer => (conv::conv2d_relu_maxpool_forward_for(pass, xv.slice(), wv.slice(), bv.slice(), &d), None),
    };
    let (hp, wp) = d.pooled();
    (flex_tensor(out.y, vec![d.batch, d.c_out, hp, wp]), out.arg, saved.map(Arc::new))
}

impl FastConvBackend for Flex {
    fn cilp_conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, params: ConvParams) -> FlexTensor {
        forward(Pass::Infer, &x, &weight, &bias, params)
    }

    fn cilp_conv2d_relu(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, params: ConvParams) -> FlexTensor {
        forward_relu(Pass::Infer, &x, &weight, &bias, params).0
    }

    fn cilp_conv2d_relu_maxpool(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, params: ConvParams) -> FlexTensor {
        forward_relu_pool(Pass::Infer, &x, &weight, &bias, params).0
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    // Input and weight (shared buffers, not copies), the parameters.
    type State = (FlexTensor, FlexTensor, ConvParams);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, weight, params) = ops.state;
        let (xv, wv, dyv) = (F32View::new(&x), F32View::new(&weight), F32View::new(&dy));
        let (x_shape, w_shape) = (xv.dims(), wv.dims());
        let d = dims_of(&x_shape, &w_shape, params);
        let want = Wanted { x: node_x.is_some(), w: node_w.is_some(), b: node_b.is_some() };
        let g = conv::conv2d_backward(xv.slice(), wv.slice(), dyv.slice(), &d, want);
        register(grads, [node_x, node_w, node_b].map(|n| n.map(|n| n.id)), g, x_shape, w_shape, d.c_out);
    }
}

/// Registers the gradients of a convolution's three parents.
fn register(
    grads: &mut Gradients,
    [node_x, node_w, node_b]: [Option<NodeId>; 3],
    g: conv::Conv2dGrads,
    x_shape: Vec<usize>,
    w_shape: Vec<usize>,
    c_out: usize,
) {
    if let (Some(node), Some(dx)) = (node_x, g.dx) {
        grads.register::<Flex>(node, flex_tensor(dx, x_shape));
    }
    if let (Some(node), Some(dw)) = (node_w, g.dw) {
        grads.register::<Flex>(node, flex_tensor(dw, w_shape));
    }
    if let (Some(node), Some(db)) = (node_b, g.db) {
        grads.register::<Flex>(node, flex_tensor(db, vec![c_out]));
    }
}

#[derive(Debug)]
struct ConvReluBackward;

impl Backward<Flex, 3> for ConvReluBackward {
    // Input, weight and output (shared buffers, not copies), the parameters, and a Winograd
    // forward pass's transformed input.
    type State = (FlexTensor, FlexTensor, FlexTensor, ConvParams, Option<Arc<SavedInput>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, weight, y, params, saved) = ops.state;
        let (xv, wv, yv, dyv) = (F32View::new(&x), F32View::new(&weight), F32View::new(&y), F32View::new(&dy));
        let (x_shape, w_shape) = (xv.dims(), wv.dims());
        let d = dims_of(&x_shape, &w_shape, params);
        let want = Wanted { x: node_x.is_some(), w: node_w.is_some(), b: node_b.is_some() };
        let g = conv::conv2d_relu_backward_saved(xv.slice(), wv.slice(), yv.slice(), dyv.slice(), &d, want, saved.as_deref());
        register(grads, [node_x, node_w, node_b].map(|n| n.map(|n| n.id)), g, x_shape, w_shape, d.c_out);
    }
}

#[derive(Debug)]
struct ConvReluPoolBackward;

impl Backward<Flex, 3> for ConvReluPoolBackward {
    // Input, weight, the argmax code of every pooled output, the parameters, and a Winograd
    // forward pass's transformed input.
    type State = (FlexTensor, FlexTensor, Arc<Vec<u8>>, ConvParams, Option<Arc<SavedInput>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, weight, arg, params, saved) = ops.state;
        let (xv, wv, dyv) = (F32View::new(&x), F32View::new(&weight), F32View::new(&dy));
        let (x_shape, w_shape) = (xv.dims(), wv.dims());
        let d = dims_of(&x_shape, &w_shape, params);
        let want = Wanted { x: node_x.is_some(), w: node_w.is_some(), b: node_b.is_some() };
        let g = conv::conv2d_relu_maxpool_backward_saved(xv.slice(), wv.slice(), dyv.slice(), &arg, &d, want, saved.as_deref());
        register(grads, [node_x, node_w, node_b].map(|n| n.map(|n| n.id)), g, x_shape, w_shape, d.c_out);
    }
}

impl<C: CheckpointStrategy> FastConvBackend for Autodiff<Flex, C> {
    fn cilp_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, params: ConvParams) -> FloatTensor<Self> {
        match ConvBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.primitive().clone(), weight.primitive().clone());
                let y = forward(Pass::Train, &xp, &wp, bias.primitive(), params);
                prep.finish((xp, wp, params), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(Pass::Infer, x.primitive(), weight.primitive(), bias.primitive(), params)),
        }
    }

    fn cilp_conv2d_relu(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, params: ConvParams) -> FloatTensor<Self> {
        match ConvReluBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.primitive().clone(), weight.primitive().clone());
                let (y, saved) = forward_relu(Pass::Train, &xp, &wp, bias.primitive(), params);
                prep.finish((xp, wp, y.clone(), params, saved), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward_relu(Pass::Infer, x.primitive(), weight.primitive(), bias.primitive(), params).0)
            }
        }
    }

    fn cilp_conv2d_relu_maxpool(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self> {
        match ConvReluPoolBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.primitive().clone(), weight.primitive().clone());
                let (y, arg, saved) = forward_relu_pool(Pass::Train, &xp, &wp, bias.primitive(), params);
                prep.finish((xp, wp, Arc::new(arg), params, saved), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward_relu_pool(Pass::Infer, x.primitive(), weight.primitive(), bias.primitive(), params).0)
            }
        }
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait FastLinearBackend: Backend {
    /// `x [rows, d_in] · weight [d_in, d_out] + bias [d_out]` -> `[rows, d_out]`, f32 only:
    /// the same products as burn's linear on flex, without its zero-filled, copied outputs.
    fn cilp_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The dims of a linear call from its input and weight shapes.
fn linear_dims(x: &[usize], w: &[usize]) -> LinearDims {
    assert!(x.len() == 2 && w.len() == 2, "cilp_linear: expected 2-d input and weight, got {x:?} and {w:?}");
    assert_eq!(x[1], w[0], "cilp_linear: input has {} features, weight expects {}", x[1], w[0]);
    LinearDims { rows: x[0], d_in: x[1], d_out: w[1] }
}

/// The linear forward pass and the dims it ran with.
fn linear_forward(pass: Pass, x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> (FlexTensor, LinearDims) {
    let (xv, wv, bv) = (F32View::new(x), F32View::new(weight), F32View::new(bias));
    let d = linear_dims(&xv.dims(), &wv.dims());
    (flex_tensor(linear::linear_forward_for(pass, xv.slice(), wv.slice(), Some(bv.slice()), d), vec![d.rows, d.d_out]), d)
}

impl FastLinearBackend for Flex {
    fn cilp_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_forward(Pass::Infer, &x, &weight, &bias).0
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    // The input (kept only when the weight needs its gradient) and the weight (kept only when
    // the input needs its gradient), shared buffers; the shapes.
    type State = (Option<FlexTensor>, Option<FlexTensor>, LinearDims);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, weight, d) = ops.state;
        let dyv = F32View::new(&dy);
        if let (Some(node), Some(w)) = (node_x, weight.as_ref()) {
            let dx = linear::linear_input_grad(dyv.slice(), F32View::new(w).slice(), d);
            grads.register::<Flex>(node.id, flex_tensor(dx, vec![d.rows, d.d_in]));
        }
        if let (Some(node), Some(x)) = (node_w, x.as_ref()) {
            let dw = linear::linear_weight_grad(F32View::new(x).slice(), dyv.slice(), d);
            grads.register::<Flex>(node.id, flex_tensor(dw, vec![d.d_in, d.d_out]));
        }
        if let Some(node) = node_b {
            // burn's own column sum (what its broadcast add's backward computes), so the bias
            // gradient is bit-identical to burn's linear.
            use burn::backend::ops::FloatTensorOps;
            let db = <Flex as FloatTensorOps<Flex>>::float_sum_dim(dy, 0);
            grads.register::<Flex>(node.id, <Flex as FloatTensorOps<Flex>>::float_reshape(db, Shape::from(vec![d.d_out])));
        }
    }
}

impl<C: CheckpointStrategy> FastLinearBackend for Autodiff<Flex, C> {
    fn cilp_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x_tracked, w_tracked) = (x.is_tracked(), weight.is_tracked());
        match LinearBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, d) = linear_forward(Pass::Train, x.primitive(), weight.primitive(), bias.primitive());
                // x is only needed for the weight gradient, the weight only for the input's.
                let state = (w_tracked.then(|| x.primitive().clone()), x_tracked.then(|| weight.primitive().clone()), d);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(linear_forward(Pass::Infer, x.primitive(), weight.primitive(), bias.primitive()).0),
        }
    }
}
