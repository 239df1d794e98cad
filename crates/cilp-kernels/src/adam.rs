//! A fused Adam optimizer.
//!
//! burn's [`Adam`](burn::optim::Adam) is a chain of about ten elementwise tensor ops per
//! parameter (two moment updates, a square, a square root, a division, several scalings, the
//! subtraction), each one a full pass over a parameter-sized buffer and most of them a fresh
//! allocation. For an MLP that dominates the training step. [`FusedAdam`] computes the same
//! update, with the same `f32` operations in the same order (so the same bits), in one pass that
//! reads the parameter, the gradient and both moments once and writes the parameter and the
//! moments in place: on the flex backend through the [`FusedAdamBackend`] extension op, which
//! writes into a tensor's buffer when the tensor owns it and into a fresh buffer when the buffer
//! is shared (a clone of the model or of the optimizer still holds it). Everywhere else (wgpu,
//! other dtypes, AMSGrad) it hands the step to burn's own [`Adam`] with the same settings.
//!
//! The state is burn's own [`AdamState`], so optimizer records saved by burn's Adam load into
//! [`FusedAdam`] and the other way round.
//!
//! [`set_fused_adam`]`(false)` (the binary's `CILP_BURN_ADAM=1`) makes [`adam_optimizer`] return burn's Adam instead
//! (for comparisons).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Backend, DispatchDevice, Flex, backend_extension, tensor::FloatTensor};
use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::{WeightDecay, WeightDecayConfig};
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Bytes, DType, Device, Tensor};
use rayon::prelude::*;

/// Whether [`adam_optimizer`] gives the fused Adam (the default).
pub fn fused_adam_enabled() -> bool {
    FUSED.load(Ordering::Relaxed)
}

static FUSED: AtomicBool = AtomicBool::new(true);

/// Chooses the fused Adam (the default) or burn's (for comparisons; the binary sets it from
/// `CILP_BURN_ADAM`).
pub fn set_fused_adam(enabled: bool) {
    FUSED.store(enabled, Ordering::Relaxed);
}

/// Adam with burn's defaults for a whole module: [`FusedAdamConfig::new().init()`](FusedAdamConfig),
/// or burn's `AdamConfig::new().init()` when [`set_fused_adam`]`(false)`. Its epsilon is burn's
/// [`BURN_EPSILON`] (1e-5), not PyTorch's [`PYTORCH_EPSILON`] (1e-8).
pub fn adam_optimizer() -> ModuleOptimizer {
    adam_optimizer_with_epsilon(BURN_EPSILON)
}

/// burn's default Adam epsilon.
pub const BURN_EPSILON: f64 = 1e-5;
/// PyTorch's default Adam epsilon (`torch.optim.Adam(eps=1e-8)`), what the original study used.
pub const PYTORCH_EPSILON: f64 = 1e-8;

/// [`adam_optimizer`] with another epsilon (e.g. [`PYTORCH_EPSILON`]). The epsilon matters: a
/// weight whose gradient's running RMS is below it takes smaller steps, and in the seed's
/// CILP about a third of the fc1 weights are there at 1e-5.
pub fn adam_optimizer_with_epsilon(epsilon: f64) -> ModuleOptimizer {
    let epsilon = epsilon as f32;
    if fused_adam_enabled() { FusedAdamConfig::new().with_epsilon(epsilon).init() } else { AdamConfig::new().with_epsilon(epsilon).init() }
}

static FUSED_STEPS: AtomicUsize = AtomicUsize::new(0);
static IN_PLACE: AtomicUsize = AtomicUsize::new(0);
static COPIED: AtomicUsize = AtomicUsize::new(0);

/// Counters of this process, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdamStats {
    /// Parameter updates that took the fused op.
    pub fused_steps: usize,
    /// Buffers (parameter or moment) the fused op updated in place.
    pub in_place: usize,
    /// Buffers it wrote to a fresh allocation because the old one was shared (or absent: the
    /// moments of a first step).
    pub copied: usize,
}

/// The counters so far (process-wide; concurrent tests see each other's updates).
pub fn adam_stats() -> AdamStats {
    AdamStats {
        fused_steps: FUSED_STEPS.load(Ordering::Relaxed),
        in_place: IN_PLACE.load(Ordering::Relaxed),
        copied: COPIED.load(Ordering::Relaxed),
    }
}

/// The scalars of one Adam step, computed exactly as burn's `AdaptiveMomentum::transform` does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// `beta_1`.
    pub beta_1: f32,
    /// `1 - beta_1`.
    pub one_minus_beta_1: f32,
    /// `beta_2`.
    pub beta_2: f32,
    /// `1 - beta_2`.
    pub one_minus_beta_2: f32,
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    pub combined: f32,
    /// `epsilon * sqrt(1 - beta_2^t)`.
    pub eps: f32,
    /// The learning rate.
    pub lr: f32,
    /// Whether this is the first step (no moments yet: `m = (1 - beta_1) g`, `v = (1 - beta_2) g^2`).
    pub first: bool,
}

impl AdamStep {
    /// The scalars of step `time` (1 for the first step).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, time: usize, lr: LearningRate) -> AdamStep {
        // Same expressions, same types as burn-optim's adam.rs.
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - beta_2.powi(t)).sqrt();
        let combined = bias_correction2_sqrt / (1.0 - beta_1.powi(t));
        AdamStep {
            beta_1,
            one_minus_beta_1: 1.0 - beta_1,
            beta_2,
            one_minus_beta_2: 1.0 - beta_2,
            combined,
            eps: epsilon * bias_correction2_sqrt,
            // burn scales by `mul_scalar(lr)`, which flex applies as `lr as f32`.
            lr: lr as f32,
            first: time == 1,
        }
    }
}

#[backend_extension(Flex)]
pub trait FusedAdamBackend: Backend {
    /// One Adam step for one parameter with its moments: `(param, moment_1, moment_2)` after
    /// the step. f32 only, all four of the parameter's shape; `step.first` must be false.
    fn cilp_adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The first Adam step of a parameter (no moments yet); `step.first` must be true.
    fn cilp_adam_first_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Elements per parallel task: large enough to amortise rayon's scheduling, small enough that
/// two threads share a 2.3M-parameter layer evenly. The split does not change any result (each
/// element's update is independent of the others).
const CHUNK: usize = 1 << 15;

/// The fused update over contiguous slices of equal length, in place.
pub fn adam_update(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamStep) {
    let n = param.len();
    assert!(grad.len() == n && m.len() == n && v.len() == n, "adam_update: slice lengths differ");
    if n <= CHUNK {
        update_chunk(param, grad, m, v, k);
        return;
    }
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| update_chunk(p, g, m, v, k));
}

#[inline(always)]
fn update_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamStep) {
    // Each expression mirrors one tensor op of burn's Adam, rounding after each (no FMA).
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    if k.first {
        for i in 0..p.len() {
            let gi = g[i];
            let mi = gi * k.one_minus_beta_1;
            let vi = (gi * gi) * k.one_minus_beta_2;
            m[i] = mi;
            v[i] = vi;
            p[i] -= ((mi * k.combined) / (vi.sqrt() + k.eps)) * k.lr;
        }
    } else {
        for i in 0..p.len() {
            let gi = g[i];
            let mi = m[i] * k.beta_1 + gi * k.one_minus_beta_1;
            let vi = v[i] * k.beta_2 + (gi * gi) * k.one_minus_beta_2;
            m[i] = mi;
            v[i] = vi;
            p[i] -= ((mi * k.combined) / (vi.sqrt() + k.eps)) * k.lr;
        }
    }
}

fn check_f32(t: &FlexTensor, what: &str) {
    assert_eq!(t.dtype(), DType::F32, "cilp_adam_step: {what} must be f32, got {:?}", t.dtype());
}

/// The tensor's elements as a contiguous `Vec`.
fn to_vec(t: &FlexTensor) -> Vec<f32> {
    let c = if t.layout().contiguous_offsets().is_some() { t.clone() } else { t.to_contiguous() };
    let (start, end) = c.layout().contiguous_offsets().expect("contiguous");
    c.storage::<f32>()[start..end].to_vec()
}

/// `t` itself when it owns its contiguous buffer (to be updated in place), otherwise a fresh
/// contiguous tensor with its values (zeros when absent).
fn writable(t: Option<FlexTensor>, shape: &burn::tensor::Shape, what: &str) -> FlexTensor {
    match t {
        Some(t) => {
            check_f32(&t, what);
            assert_eq!(t.layout().shape(), shape, "cilp_adam_step: {what} has the wrong shape");
            if t.is_unique() && t.layout().contiguous_offsets().is_some() {
                IN_PLACE.fetch_add(1, Ordering::Relaxed);
                t
            } else {
                COPIED.fetch_add(1, Ordering::Relaxed);
                FlexTensor::new(Bytes::from_elems(to_vec(&t)), Layout::contiguous(shape.clone()), DType::F32)
            }
        }
        None => {
            COPIED.fetch_add(1, Ordering::Relaxed);
            FlexTensor::zeros(shape.clone(), DType::F32)
        }
    }
}

/// The contiguous element range of a [`writable`] tensor (it owns its buffer, so flex's
/// copy-on-write `storage_mut` does not copy).
fn slice_mut(t: &mut FlexTensor) -> &mut [f32] {
    let (start, end) = t.layout().contiguous_offsets().expect("writable tensors are contiguous");
    &mut t.storage_mut::<f32>()[start..end]
}

/// The fused step on flex tensors (moments `None` on the first step).
fn flex_step(
    param: FlexTensor,
    grad: FlexTensor,
    moment_1: Option<FlexTensor>,
    moment_2: Option<FlexTensor>,
    step: AdamStep,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    assert_eq!(moment_1.is_none(), step.first, "cilp_adam_step: moments must be absent exactly on the first step");
    check_f32(&grad, "the gradient");
    let shape = param.layout().shape().clone();
    assert_eq!(grad.layout().shape(), &shape, "cilp_adam_step: the gradient has the wrong shape");
    let mut p = writable(Some(param), &shape, "the parameter");
    let mut m = writable(moment_1, &shape, "moment 1");
    let mut v = writable(moment_2, &shape, "moment 2");
    {
        let copy;
        let g = match grad.layout().contiguous_offsets() {
            Some((s, e)) => &grad.storage::<f32>()[s..e],
            None => {
                copy = to_vec(&grad);
                &copy[..]
            }
        };
        adam_update(slice_mut(&mut p), g, slice_mut(&mut m), slice_mut(&mut v), &step);
    }
    (p, m, v)
}

impl FusedAdamBackend for Flex {
    fn cilp_adam_step(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        flex_step(param, grad, Some(moment_1), Some(moment_2), step)
    }

    fn cilp_adam_first_step(param: FlexTensor, grad: FlexTensor, step: AdamStep) -> (FlexTensor, FlexTensor, FlexTensor) {
        flex_step(param, grad, None, None, step)
    }
}

/// Configuration of [`FusedAdam`]: the same fields and defaults as burn's
/// [`AdamConfig`](burn::optim::AdamConfig).
#[derive(Config, Debug)]
pub struct FusedAdamConfig {
    /// Parameter for Adam.
    #[config(default = 0.9)]
    beta_1: f32,
    /// Parameter for Adam.
    #[config(default = 0.999)]
    beta_2: f32,
    /// A value required for numerical stability.
    #[config(default = 1e-5)]
    epsilon: f32,
    /// Whether to use the AMSGrad algorithm (burn's tensor ops, not fused).
    #[config(default = false)]
    amsgrad: bool,
    /// Weight decay config.
    weight_decay: Option<WeightDecayConfig>,
    /// Gradient clipping config.
    grad_clipping: Option<GradientClippingConfig>,
}

impl FusedAdamConfig {
    /// The bare per-parameter optimizer (for `ModuleOptimizer::with_group`).
    pub fn build(&self) -> FusedAdam {
        FusedAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            amsgrad: self.amsgrad,
            weight_decay: self.weight_decay.as_ref().map(WeightDecay::new),
            reference: AdamConfig::new()
                .with_beta_1(self.beta_1)
                .with_beta_2(self.beta_2)
                .with_epsilon(self.epsilon)
                .with_amsgrad(self.amsgrad)
                .with_weight_decay(self.weight_decay.clone())
                .build(),
        }
    }

    /// The optimizer of a whole module, with the configured gradient clipping (like
    /// `AdamConfig::init`).
    pub fn init(&self) -> ModuleOptimizer {
        let mut optim = ModuleOptimizer::from(self.build());
        if let Some(config) = &self.grad_clipping {
            optim = optim.with_grad_clipping(config.init());
        }
        optim
    }
}

/// Adam, fused on the flex backend; burn's semantics and state ([`AdamState`]).
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    amsgrad: bool,
    weight_decay: Option<WeightDecay>,
    /// burn's own Adam with the same settings, for the steps the fused op does not take.
    reference: Adam,
}

fn on_flex<const D: usize>(t: &Tensor<D>) -> bool {
    // A plain flex tensor (not autodiff: the optimizer steps on the inner backend).
    t.dtype() == DType::F32 && matches!(t.device().as_dispatch(), DispatchDevice::Flex(_))
}

impl FusedAdam {
    /// Whether the fused op handles this step.
    fn fusable<const D: usize>(&self, tensor: &Tensor<D>, grad: &Tensor<D>, state: Option<&AdamState<D>>) -> bool {
        let dims = tensor.dims();
        !self.amsgrad
            && on_flex(tensor)
            && on_flex(grad)
            && grad.dims() == dims
            && state.is_none_or(|s| {
                let m = &s.momentum;
                on_flex(&m.moment_1) && on_flex(&m.moment_2) && m.moment_1.dims() == dims && m.moment_2.dims() == dims
            })
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !self.fusable(&tensor, &grad, state.as_ref()) {
            return self.reference.step(lr, tensor, grad, state);
        }
        if let Some(weight_decay) = &self.weight_decay {
            grad = weight_decay.transform(grad, tensor.clone());
        }
        let (time, m1, m2, max_m2) = match state {
            Some(AdamState { momentum: s }) => (s.time + 1, Some(s.moment_1), Some(s.moment_2), s.max_moment_2),
            None => (1, None, None, None),
        };
        // burn's update formula follows from the presence of a state, not from its time.
        let step = AdamStep { first: m1.is_none(), ..AdamStep::new(self.beta_1, self.beta_2, self.epsilon, time, lr) };
        FUSED_STEPS.fetch_add(1, Ordering::Relaxed);
        type D = burn::backend::Dispatch;
        let (p, m, v) = match (m1, m2) {
            (Some(m1), Some(m2)) => <D as FusedAdamBackend>::cilp_adam_step(
                tensor.into_dispatch(),
                grad.into_dispatch(),
                m1.into_dispatch(),
                m2.into_dispatch(),
                step,
            ),
            _ => <D as FusedAdamBackend>::cilp_adam_first_step(tensor.into_dispatch(), grad.into_dispatch(), step),
        };
        let momentum = AdaptiveMomentumState {
            time,
            moment_1: Tensor::from_dispatch(m),
            moment_2: Tensor::from_dispatch(v),
            // Unused without AMSGrad; burn's Adam carries it along unchanged too.
            max_moment_2: max_m2,
        };
        (Tensor::from_dispatch(p), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
