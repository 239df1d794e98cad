//! The fused Adam against burn's Adam: same parameters after several training steps, records
//! that round-trip (and load from burn's Adam), the shared-buffer path against the in-place one,
//! and the same bits at one and two threads.

use burn::backend::Flex;
use burn::backend::flex::{FlexTensor, Layout};
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamState, GradientsParams, ModuleOptimizer, Optimizer};
use burn::tensor::{Bytes, DType, Device, Shape, Tensor, TensorData};
use cilp_kernels::adam::{AdamStep, FusedAdam, FusedAdamBackend, FusedAdamConfig, adam_stats, adam_update};

#[derive(Module, Debug)]
struct Net {
    a: Linear,
    b: Linear,
}

impl Net {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.b.forward(burn::tensor::activation::relu(self.a.forward(x)))
    }
}

const IN: usize = 200;
const HIDDEN: usize = 400; // 80,000 weights in `a`: several parallel chunks
const OUT: usize = 50;
const BATCH: usize = 8;

fn seeded_vec(n: usize, seed: u64) -> Vec<f32> {
    // A small LCG: deterministic, independent of any RNG shared between tests.
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn seeded<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    Tensor::from_data(TensorData::new(seeded_vec(n, seed), shape), device)
}

fn linear(d_in: usize, d_out: usize, seed: u64, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_in, d_out).init(device);
    l.weight = Param::from_tensor(seeded([d_in, d_out], seed, device).mul_scalar(0.1));
    l.bias = Some(Param::from_tensor(seeded([d_out], seed + 1, device).mul_scalar(0.1)));
    l
}

fn net(device: &Device) -> Net {
    Net { a: linear(IN, HIDDEN, 1, device), b: linear(HIDDEN, OUT, 3, device) }
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data")
}

/// All parameters of the net, flattened.
fn params(n: &Net) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for l in [&n.a, &n.b] {
        out.push(to_vec(l.weight.val()));
        out.push(to_vec(l.bias.as_ref().unwrap().val()));
    }
    out
}

fn max_rel_err(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            assert_eq!(a.len(), b.len());
            a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs() / y.abs().max(1e-6)))
        })
        .fold(0.0, f32::max)
}

fn bits(a: &[Vec<f32>]) -> Vec<Vec<u32>> {
    a.iter().map(|v| v.iter().map(|x| x.to_bits()).collect()).collect()
}

/// One training step on batch `step` (seeded inputs and targets), MSE loss.
fn train_step(model: Net, optim: &mut ModuleOptimizer, step: u64, lr: f64) -> Net {
    let device = model.a.weight.val().device();
    let x = seeded([BATCH, IN], 1000 + step, &device);
    let target = seeded([BATCH, OUT], 2000 + step, &device);
    let loss = (model.forward(x) - target).square().mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(lr, model, grads)
}

fn train(mut model: Net, optim: &mut ModuleOptimizer, steps: std::ops::Range<u64>, lr: f64) -> Net {
    for s in steps {
        model = train_step(model, optim, s, lr);
    }
    model
}

fn device() -> Device {
    Device::flex().autodiff()
}

#[test]
fn fused_adam_matches_burn_adam_over_steps() {
    let device = device();
    for lr in [1e-2, 1e-4] {
        let before = adam_stats();
        let fused = train(net(&device), &mut FusedAdamConfig::new().init(), 0..8, lr);
        let after = adam_stats();
        // 4 parameters x 8 steps through the fused op (other tests may add to the counters).
        assert!(after.fused_steps - before.fused_steps >= 32, "the fused path was not taken");
        // Every buffer in place but the moments of the first step: 4 + 7 x 12 (the model is not
        // shared, so its parameters own their buffers once the graph is gone).
        assert!(after.in_place - before.in_place >= 88, "buffers were not updated in place: {before:?} -> {after:?}");
        let burn = train(net(&device), &mut AdamConfig::new().init(), 0..8, lr);
        let (f, b) = (params(&fused), params(&burn));
        let err = max_rel_err(&f, &b);
        assert!(err <= 1e-6, "lr {lr}: fused Adam differs from burn's by {err} (relative)");
        // The same f32 operations in the same order: the same bits.
        assert_eq!(bits(&f), bits(&b), "lr {lr}: fused Adam is not bit-identical to burn's");
        assert_ne!(bits(&f), bits(&params(&net(&device))), "the parameters did not move");
    }
}

#[test]
fn options_match_burn_adam() {
    // Weight decay (fused after burn's gradient transform) and AMSGrad (burn's tensor ops).
    let device = device();
    let cases: [(FusedAdamConfig, AdamConfig); 3] = [
        (
            FusedAdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(0.05))),
            AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(0.05))),
        ),
        (FusedAdamConfig::new().with_amsgrad(true), AdamConfig::new().with_amsgrad(true)),
        (
            FusedAdamConfig::new().with_beta_1(0.8).with_beta_2(0.99).with_epsilon(1e-7),
            AdamConfig::new().with_beta_1(0.8).with_beta_2(0.99).with_epsilon(1e-7),
        ),
    ];
    for (i, (fc, bc)) in cases.iter().enumerate() {
        let fused = params(&train(net(&device), &mut fc.init(), 0..6, 1e-2));
        let burn = params(&train(net(&device), &mut bc.init(), 0..6, 1e-2));
        let err = max_rel_err(&fused, &burn);
        assert!(err <= 1e-6, "case {i}: fused Adam differs from burn's by {err}");
    }
}

#[test]
fn record_round_trip_continues_identically() {
    let device = device();
    let mut optim = FusedAdamConfig::new().init();
    let model = train(net(&device), &mut optim, 0..3, 1e-2);
    let bytes = optim.into_bytes().expect("record to bytes");
    let mut restored = FusedAdamConfig::new().init().from_bytes(bytes).expect("record from bytes");
    let a = params(&train(model.clone(), &mut optim, 3..7, 1e-2));
    let b = params(&train(model, &mut restored, 3..7, 1e-2));
    assert_eq!(bits(&a), bits(&b), "the restored optimizer continues differently");
}

#[test]
fn burn_adam_records_load_into_fused_adam() {
    // Existing checkpoints (optim-eNNNN.bpk written by burn's Adam) keep working, both ways.
    let device = device();
    let mut burn_optim = AdamConfig::new().init();
    let model = train(net(&device), &mut burn_optim, 0..3, 1e-2);
    let bytes = burn_optim.into_bytes().expect("record to bytes");
    let mut fused = FusedAdamConfig::new().init().from_bytes(bytes).expect("burn's record loads");
    let a = params(&train(model.clone(), &mut burn_optim, 3..7, 1e-2));
    let model = train(model, &mut fused, 3..7, 1e-2);
    let b = params(&model);
    assert!(max_rel_err(&b, &a) <= 1e-6);
    assert_eq!(bits(&a), bits(&b), "fused Adam continues burn's record differently");

    // And back: burn's Adam continues a fused record as the fused one does.
    let bytes = fused.into_bytes().expect("record to bytes");
    let mut back = AdamConfig::new().init().from_bytes(bytes).expect("fused record loads into burn's Adam");
    let a = params(&train(model.clone(), &mut back, 7..9, 1e-2));
    let b = params(&train(model, &mut fused, 7..9, 1e-2));
    assert_eq!(bits(&a), bits(&b), "burn's Adam continues a fused record differently");
}

fn flex(values: Vec<f32>, shape: [usize; 2]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(shape.to_vec())), DType::F32)
}

fn flex_vec(t: &FlexTensor) -> Vec<f32> {
    t.clone().into_data().try_to_vec::<f32>().unwrap()
}

fn ptr(t: &FlexTensor) -> *const u8 {
    t.bytes().as_ptr()
}

#[test]
fn shared_buffers_give_the_in_place_result() {
    let shape = [300, 257]; // 77,100 elements: three parallel chunks
    let n = shape[0] * shape[1];
    let v_init: Vec<f32> = seeded_vec(n, 14).iter().map(|x| x * x * 0.01).collect();
    let make = || {
        (
            flex(seeded_vec(n, 11), shape),
            flex(seeded_vec(n, 12), shape),
            flex(seeded_vec(n, 13).iter().map(|x| x * 0.1).collect(), shape),
            flex(v_init.clone(), shape),
        )
    };
    let step = AdamStep::new(0.9, 0.999, 1e-5, 4, 1e-2);
    assert!(!step.first);

    // Unique buffers: updated in place.
    let (p, g, m, v) = make();
    let ptrs = (ptr(&p), ptr(&m), ptr(&v));
    let in_place = <Flex as FusedAdamBackend>::cilp_adam_step(p, g, m, v, step);
    assert_eq!((ptr(&in_place.0), ptr(&in_place.1), ptr(&in_place.2)), ptrs, "not updated in place");

    // Shared buffers: fresh outputs, the other holders see the old values.
    let (p, g, m, v) = make();
    let held = (p.clone(), m.clone(), v.clone());
    let shared = <Flex as FusedAdamBackend>::cilp_adam_step(p, g, m, v, step);
    assert_ne!(ptr(&shared.0), ptr(&held.0));
    assert_ne!(ptr(&shared.1), ptr(&held.1));
    assert_ne!(ptr(&shared.2), ptr(&held.2));
    let fresh = make();
    assert_eq!(flex_vec(&held.0), flex_vec(&fresh.0), "a shared parameter buffer was written");
    assert_eq!(flex_vec(&held.1), flex_vec(&fresh.2), "a shared moment buffer was written");
    assert_eq!(flex_vec(&held.2), flex_vec(&fresh.3), "a shared moment buffer was written");

    // Strided (transposed) inputs: copied, same values.
    let t = |x: FlexTensor| x.transpose(0, 1).to_contiguous().transpose(0, 1);
    let (p, g, m, v) = make();
    let strided = <Flex as FusedAdamBackend>::cilp_adam_step(t(p), t(g), t(m), t(v), step);

    for (name, (a, b, c)) in ["param", "moment 1", "moment 2"].iter().zip([
        (&in_place.0, &shared.0, &strided.0),
        (&in_place.1, &shared.1, &strided.1),
        (&in_place.2, &shared.2, &strided.2),
    ]) {
        let (a, b, c) = (flex_vec(a), flex_vec(b), flex_vec(c));
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{name}: shared path differs"
        );
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            c.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{name}: strided path differs"
        );
    }
    assert_ne!(flex_vec(&in_place.0), flex_vec(&make().0), "the parameter did not move");
}

#[test]
fn a_model_clone_keeps_its_parameters() {
    // The optimizer steps a model whose buffers a clone still holds: the clone is untouched and
    // the result equals the in-place one.
    let device = device();
    let model = train(net(&device), &mut FusedAdamConfig::new().init(), 0..1, 1e-2);
    let mut o1 = FusedAdamConfig::new().init();
    let mut o2 = FusedAdamConfig::new().init();
    let _ = train(model.clone(), &mut o1, 1..2, 1e-2); // same state in both optimizers
    let _ = train(model.clone(), &mut o2, 1..2, 1e-2);
    let keep = model.clone();
    let kept = params(&keep);
    let shared = train(model.clone(), &mut o1, 2..4, 1e-2);
    let unique = train(model, &mut o2, 2..4, 1e-2);
    assert_eq!(params(&keep), kept, "stepping a shared model changed its clone");
    assert_eq!(bits(&params(&shared)), bits(&params(&unique)));
}

#[test]
fn same_bits_at_one_and_two_threads() {
    // The optimizer alone, with seeded gradients (not the model's), at 1 and 2 rayon threads.
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let device = device();
            let mut model = net(&device);
            let mut optim = FusedAdamConfig::new().init();
            for step in 0..5u64 {
                let mut grads = GradientsParams::new();
                let inner = Device::flex();
                for (i, l) in [&model.a, &model.b].into_iter().enumerate() {
                    let seed = 100 * step + 10 * i as u64;
                    grads.register(l.weight.id, seeded::<2>(l.weight.val().dims(), seed, &inner));
                    let bias = l.bias.as_ref().unwrap();
                    grads.register(bias.id, seeded::<1>(bias.val().dims(), seed + 1, &inner));
                }
                model = optim.step(1e-2, model, grads);
            }
            bits(&params(&model))
        })
    };
    assert_eq!(run(1), run(2));

    // And the slice kernel over many chunks.
    let n = 1_000_003;
    let k = AdamStep::new(0.9, 0.999, 1e-5, 3, 1e-3);
    let kernel = |threads: usize| {
        let (mut p, g, mut m, mut v) = (seeded_vec(n, 1), seeded_vec(n, 2), seeded_vec(n, 3), seeded_vec(n, 4));
        v.iter_mut().for_each(|x| *x = *x * *x);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| adam_update(&mut p, &g, &mut m, &mut v, &k));
        [p, m, v].map(|x| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
    };
    assert_eq!(kernel(1), kernel(2));
}

#[test]
fn non_flex_tensors_take_burn_ops_with_the_same_math() {
    // Autodiff tensors are not plain flex tensors: they take the tensor-op path (the one wgpu
    // takes). Both paths step the same parameter with the same gradients.
    let optim: FusedAdam = FusedAdamConfig::new().build();
    let run = |device: &Device| {
        let mut p = seeded::<2>([64, 33], 5, device);
        let mut state: Option<AdamState<2>> = None;
        for step in 0..5 {
            let g = seeded::<2>([64, 33], 50 + step, device);
            let (np, ns) = optim.step(1e-2, p, g, state);
            p = np;
            state = ns;
        }
        let s = state.unwrap().momentum;
        [to_vec(p), to_vec(s.moment_1), to_vec(s.moment_2)].map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    let before = adam_stats().fused_steps;
    let reference = run(&Device::flex().autodiff());
    let fused = run(&Device::flex());
    assert!(adam_stats().fused_steps >= before + 5);
    assert_eq!(fused, reference);
}
