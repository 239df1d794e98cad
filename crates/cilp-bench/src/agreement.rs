//! Device agreement: does a model compute the same thing on another device (wgpu) as on the CPU?
//!
//! For every zoo architecture, one model is initialised on the CPU and copied to the other
//! device, so both start from the same weights. On one batch of deterministic inputs each device
//! computes the forward output, the loss, every parameter's gradient and one Adam step (the CPU
//! with cilp's fused kernels, the other device through their fallback to burn's own ops), and the
//! results are compared within the stated [`Tolerances`].
//!
//! The CPU side runs its training forward passes in Winograd F(2x2, 3x3) where training takes
//! F(4x4, 3x3) ([`cilp_kernels::winograd::set_reference_forward`], for the check's duration):
//! F(4x4)'s rounding flips ReLU / MaxPool decisions that sit near a tie about 10x as often, a
//! flipped decision moves a whole gradient value, and the other device's gradients follow its own
//! decisions. F(4x4)'s forward values and its backward passes at the same decisions are checked
//! against the direct kernel in `cilp-models/tests/winograd_gradients.rs`.
//!
//! Adam's first step moves every parameter by about `lr * sign(gradient)`, so an element whose
//! gradient is below the gradient tolerance may legitimately move the other way on the other
//! device; the step is compared on the elements whose gradient is larger than that ("decisive"
//! elements), and the others are counted.

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use cilp_kernels::adam::{adam_optimizer, adam_stats};
use cilp_models::loss::mse;
use cilp_models::seed_assess::seed_projector_config;
use cilp_models::{ModelInputs, ModelSpec, ModelTask, ProjectorConfig, build_cilp, build_seed_cilp, materialize, splitmix_values};
use cilp_train::device::{DeviceSpec, device};
use cilp_train::error::{Result, TrainError};
use serde::{Deserialize, Serialize};

/// How far apart the two devices may be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    /// Outputs: `max |a - b| <= outputs * max(1, max |a|)`.
    pub outputs: f64,
    /// Loss: `|a - b| <= loss * max(1, |a|)`.
    pub loss: f64,
    /// Gradients, per parameter tensor: `max |a - b| <= gradients * max |a|` (relative to the
    /// tensor's largest gradient, since sums of many products round differently).
    pub gradients: f64,
    /// Adam step on decisive elements, in units of the learning rate.
    pub step: f64,
    /// Gradients and step of the contrastive models (CILP), in place of `gradients` and `step`.
    /// At initialisation their normalised embeddings of different inputs are nearly parallel,
    /// so the loss's gradients are differences of nearly equal numbers and two correct
    /// implementations that add in another order differ far more than elsewhere (measured on
    /// lavapipe: up to 3e-2 at batch 2, 5e-3 at batch 8, against 1e-5 for the classifiers).
    pub contrastive: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances { outputs: 1e-4, loss: 1e-4, gradients: 1e-3, step: 1e-3, contrastive: 5e-2 }
    }
}

/// What to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementConfig {
    /// Zoo model names (default: every model of the zoo).
    pub models: Vec<String>,
    /// Samples in the batch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of the initial weights and inputs.
    pub seed: u64,
    pub tolerances: Tolerances,
}

impl Default for AgreementConfig {
    fn default() -> Self {
        AgreementConfig {
            models: ModelSpec::all().iter().map(|s| s.name()).collect(),
            batch_size: 8,
            lr: 1e-3,
            seed: 7,
            tolerances: Tolerances::default(),
        }
    }
}

/// One model's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRow {
    pub model: String,
    pub parameters: usize,
    /// Largest |CPU - device| over the outputs (logits, embeddings or projections).
    pub output_max_abs_diff: f64,
    /// Largest |output| on the CPU.
    pub output_max_abs: f64,
    pub loss_cpu: f64,
    pub loss_device: f64,
    /// Worst parameter tensor: max |CPU - device| / max |CPU| of its gradient.
    pub gradient_max_rel_diff: f64,
    /// Name of that parameter tensor.
    pub gradient_worst: String,
    /// Largest |CPU - device| of the parameters after one Adam step, on decisive elements, in
    /// units of the learning rate.
    pub step_max_diff_lr: f64,
    /// Elements whose gradient is within the tolerance of zero and that moved differently.
    pub step_undecided: usize,
    /// Parameter tensors compared.
    pub tensors: usize,
    /// The gradient (and step) tolerance applied (`Tolerances::contrastive` for CILP models).
    pub gradient_tolerance: f64,
    /// Seconds the device part took (kernel compilation included).
    pub device_seconds: f64,
    /// Every figure within its tolerance.
    pub ok: bool,
}

/// The whole check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementReport {
    /// The device compared with the CPU.
    pub device: DeviceSpec,
    /// The adapter it ran on (`cilp_train::device::adapter`), where known.
    pub adapter: Option<String>,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    pub tolerances: Tolerances,
    pub rows: Vec<AgreementRow>,
    /// cilp's fused CPU convolution calls made while the device computed (must be 0: the
    /// kernels fall back to burn's ops off the CPU).
    pub fast_conv_calls_on_device: usize,
    /// Fused-Adam parameter updates made while the device computed (must be 0).
    pub fused_adam_steps_on_device: usize,
    pub seconds: f64,
}

impl AgreementReport {
    /// Every model within tolerance and, on a device other than the CPU, no CPU kernel used there.
    pub fn ok(&self) -> bool {
        let fallback = self.device == DeviceSpec::Cpu || (self.fast_conv_calls_on_device == 0 && self.fused_adam_steps_on_device == 0);
        self.rows.iter().all(|r| r.ok) && fallback
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "device {} ({}) vs cpu: batch {}, Adam lr {}, seed {}\n\
             tolerances: outputs {:.0e} x max(1,|out|), loss {:.0e} rel, gradients {:.0e} x max|g| per tensor, step {:.0e} x lr \
             (contrastive models: {:.0e} for both)\n\n",
            self.device,
            self.adapter.as_deref().unwrap_or("adapter unknown"),
            self.batch_size,
            self.lr,
            self.seed,
            self.tolerances.outputs,
            self.tolerances.loss,
            self.tolerances.gradients,
            self.tolerances.step,
            self.tolerances.contrastive,
        );
        s += &format!(
            "{:<36} {:>11} {:>10} {:>12} {:>10} {:>10} {:>9} {:>7}  {}\n",
            "model", "params", "out diff", "loss cpu", "loss diff", "grad rel", "step/lr", "secs", "ok"
        );
        for r in &self.rows {
            s += &format!(
                "{:<36} {:>11} {:>10.2e} {:>12.6} {:>10.2e} {:>10.2e} {:>9.2e} {:>7.1}  {}\n",
                r.model,
                r.parameters,
                r.output_max_abs_diff,
                r.loss_cpu,
                (r.loss_cpu - r.loss_device).abs(),
                r.gradient_max_rel_diff,
                r.step_max_diff_lr,
                r.device_seconds,
                if r.ok { "ok" } else { "DIFFERS" }
            );
        }
        s += &format!(
            "\nCPU kernels used on the device: {} fused convolutions, {} fused Adam updates (both must be 0)\n",
            self.fast_conv_calls_on_device, self.fused_adam_steps_on_device
        );
        s += &format!("{} of {} models agree ({:.1} s)\n", self.rows.iter().filter(|r| r.ok).count(), self.rows.len(), self.seconds);
        s
    }
}

/// One batch as plain data, put on either device. Every input is centred near zero, depth
/// included (not 20-50 m): a constant offset of 35 makes the first convolution's weight gradient
/// a small difference of large sums, and two correct implementations that add in different
/// orders then differ by 4% of it (measured on the LiDAR classifier; 1e-5 with centred inputs).
struct HostBatch {
    b: usize,
    rgb: Vec<f32>,
    xyza: Vec<f32>,
    depth: Vec<f32>,
    embedding: Vec<f32>,
    targets: Vec<i64>,
    regression_target: Vec<f32>,
}

impl HostBatch {
    fn new(b: usize, seed: u64, target_width: usize) -> HostBatch {
        HostBatch {
            b,
            rgb: splitmix_values(b * 4 * 64 * 64, seed ^ 1, 0.0, 1.0),
            xyza: splitmix_values(b * 4 * 64 * 64, seed ^ 2, -1.0, 1.0),
            depth: splitmix_values(b * 64 * 64, seed ^ 3, -1.0, 1.0),
            embedding: splitmix_values(b * 200, seed ^ 4, -1.0, 1.0),
            targets: (0..b as i64).map(|i| i % 2).collect(),
            regression_target: splitmix_values(b * target_width, seed ^ 5, -1.0, 1.0),
        }
    }

    fn image(&self, v: &[f32], c: usize, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v.to_vec(), [self.b, c, 64, 64]), device)
    }

    fn inputs(&self, device: &Device) -> ModelInputs {
        ModelInputs {
            rgb: Some(self.image(&self.rgb, 4, device)),
            xyza: Some(self.image(&self.xyza, 4, device)),
            depth: Some(self.image(&self.depth, 1, device)),
        }
    }

    fn embedding(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(self.embedding.clone(), [self.b, 200]), device)
    }

    fn regression_target(&self, device: &Device) -> Tensor<2> {
        let w = self.regression_target.len() / self.b;
        Tensor::from_data(TensorData::new(self.regression_target.clone(), [self.b, w]), device)
    }

    fn targets(&self, device: &Device) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(self.targets.clone(), [self.b]), device)
    }
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 data")
}

/// Every float parameter's name (module path) and values, in visiting order.
fn parameters<M: Module>(m: &M) -> Vec<(String, Vec<f32>)> {
    struct V {
        path: Vec<String>,
        out: Vec<(String, Vec<f32>)>,
    }
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.out.push((self.path.join("."), floats(p.val().inner())));
        }
    }
    let mut v = V { path: vec![], out: vec![] };
    m.visit(&mut v);
    v.out
}

/// Every float parameter's gradient, in visiting order (zeros where a parameter has none).
fn gradients<M: Module>(m: &M, grads: &GradientsParams) -> Vec<Vec<f32>> {
    struct V<'a> {
        grads: &'a GradientsParams,
        out: Vec<Vec<f32>>,
    }
    impl ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let g = self.grads.get::<D>(p.id).map(floats).unwrap_or_else(|| vec![0.0; p.val().shape().num_elements()]);
            self.out.push(g);
        }
    }
    let mut v = V { grads, out: vec![] };
    m.visit(&mut v);
    v.out
}

/// What one device computed for one model.
struct Computed {
    output: Vec<f32>,
    loss: f64,
    gradients: Vec<Vec<f32>>,
    after: Vec<(String, Vec<f32>)>,
}

/// Forward, loss, gradients and one Adam step of `model` (already on `device`).
fn compute<M, F>(model: M, lr: f64, forward: F) -> Computed
where
    M: Module,
    F: Fn(&M) -> (Tensor<2>, Tensor<1>),
{
    let (output, loss) = forward(&model);
    let output = floats(output.inner());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let loss = floats(loss.inner())[0] as f64;
    let gradients = gradients(&model, &grads);
    let mut optim = adam_optimizer();
    let stepped = optim.step(lr, model, grads);
    Computed { output, loss, gradients, after: parameters(&stepped) }
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs() as f64))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()))
}

/// Runs `f` on the CPU copy and the device copy of `model` and compares.
fn compare<M, F>(name: &str, model: M, dev: &Device, cfg: &AgreementConfig, contrastive: bool, forward: F) -> AgreementRow
where
    M: Module,
    F: Fn(&M, &Device) -> (Tensor<2>, Tensor<1>),
{
    let parameters = model.num_params();
    let on_device = model.clone().fork(dev);
    let cpu_device = cilp_models::cpu_autodiff_device();
    let cpu = compute(model, cfg.lr, |m| forward(m, &cpu_device));
    let t = Instant::now();
    let other = compute(on_device, cfg.lr, |m| forward(m, dev));
    let device_seconds = t.elapsed().as_secs_f64();
    let tol = cfg.tolerances;
    let (grad_tol, step_tol) = if contrastive { (tol.contrastive, tol.contrastive) } else { (tol.gradients, tol.step) };

    let output_max_abs = max_abs(&cpu.output);
    let output_max_abs_diff = max_abs_diff(&cpu.output, &other.output);
    let (mut gradient_max_rel_diff, mut gradient_worst) = (0.0f64, String::new());
    let (mut step_max_diff_lr, mut step_undecided) = (0.0f64, 0usize);
    for (i, (g_cpu, g_dev)) in cpu.gradients.iter().zip(&other.gradients).enumerate() {
        let scale = max_abs(g_cpu);
        let rel = if scale > 0.0 { max_abs_diff(g_cpu, g_dev) / scale } else { max_abs(g_dev) };
        if rel > gradient_max_rel_diff || gradient_worst.is_empty() {
            gradient_max_rel_diff = gradient_max_rel_diff.max(rel);
            if rel >= gradient_max_rel_diff {
                gradient_worst = cpu.after[i].0.clone();
            }
        }
        let threshold = grad_tol * scale;
        for (k, g) in g_cpu.iter().enumerate() {
            let d = (cpu.after[i].1[k] as f64 - other.after[i].1[k] as f64).abs() / cfg.lr;
            if (*g as f64).abs() > threshold {
                step_max_diff_lr = step_max_diff_lr.max(d);
            } else if d > step_tol {
                step_undecided += 1;
            }
        }
    }
    let ok = cpu.gradients.len() == other.gradients.len()
        && cpu.output.len() == other.output.len()
        && output_max_abs_diff <= tol.outputs * output_max_abs.max(1.0)
        && (cpu.loss - other.loss).abs() <= tol.loss * cpu.loss.abs().max(1.0)
        && gradient_max_rel_diff <= grad_tol
        && step_max_diff_lr <= step_tol
        && other.loss.is_finite();
    AgreementRow {
        model: name.to_string(),
        parameters,
        output_max_abs_diff,
        output_max_abs,
        loss_cpu: cpu.loss,
        loss_device: other.loss,
        gradient_max_rel_diff,
        gradient_worst,
        step_max_diff_lr,
        step_undecided,
        tensors: cpu.gradients.len(),
        gradient_tolerance: grad_tol,
        device_seconds,
        ok,
    }
}

/// Compares `spec` with the CPU for every model of `cfg`; `progress` gets each finished row.
pub fn check(spec: DeviceSpec, cfg: &AgreementConfig, mut progress: impl FnMut(&AgreementRow)) -> Result<AgreementReport> {
    let specs = cfg.models.iter().map(|n| ModelSpec::parse(n).map_err(TrainError::from)).collect::<Result<Vec<_>>>()?;
    if cfg.batch_size < 2 {
        return Err(TrainError::Config(format!("the agreement check needs a batch of at least 2 (got {})", cfg.batch_size)));
    }
    let dev = device(spec)?.autodiff();
    let adapter = cilp_train::device::adapter(spec);
    let _reference = ReferenceForward::on();
    let start = Instant::now();
    let cpu = cilp_models::cpu_autodiff_device();
    let (mut conv_on_device, mut adam_on_device) = (0usize, 0usize);
    let mut rows = Vec::new();
    for s in specs {
        let name = s.name();
        let width = s.outputs();
        let host = HostBatch::new(cfg.batch_size, cfg.seed, width);
        cpu.seed(cfg.seed);
        // Counters before and after the device part only (compare() runs the CPU first).
        let row = {
            let counters = std::cell::Cell::new((0usize, 0usize));
            let mark = |dev_part: bool| {
                if dev_part {
                    counters.set((cilp_kernels::fast_calls(), adam_stats().fused_steps));
                }
            };
            let r = match s.task() {
                ModelTask::Classification => {
                    let m = s.build_classifier(&cpu)?;
                    compare(&name, m, &dev, cfg, false, |m, d| {
                        mark(d == &dev);
                        let out = m.forward(&host.inputs(d));
                        let loss = m.loss(out.clone(), host.targets(d));
                        (out, loss)
                    })
                }
                ModelTask::Contrastive if matches!(s, ModelSpec::SeedCilp) => {
                    let m = build_seed_cilp(&cpu);
                    compare(&name, m, &dev, cfg, true, |m, d| {
                        mark(d == &dev);
                        let inputs = host.inputs(d);
                        let (img, lid) = m.forward(inputs.rgb.unwrap(), inputs.xyza.unwrap());
                        let loss = m.loss(img.clone(), lid);
                        (img, loss)
                    })
                }
                ModelTask::Contrastive => {
                    let m = build_cilp(&name, &cpu)?;
                    compare(&name, m, &dev, cfg, true, |m, d| {
                        mark(d == &dev);
                        let inputs = host.inputs(d);
                        let (img, lid) = m.forward(inputs.rgb.unwrap(), inputs.depth.unwrap());
                        let loss = m.loss(img.clone(), lid);
                        (img, loss)
                    })
                }
                ModelTask::Regression => {
                    let config = if matches!(s, ModelSpec::SeedProjector) { seed_projector_config() } else { ProjectorConfig::new() };
                    let m = materialize(config.init(&cpu));
                    compare(&name, m, &dev, cfg, false, |m, d| {
                        mark(d == &dev);
                        let out = m.forward(host.embedding(d));
                        let loss = mse(out.clone(), host.regression_target(d));
                        (out, loss)
                    })
                }
            };
            let (conv0, adam0) = counters.get();
            conv_on_device += cilp_kernels::fast_calls() - conv0;
            adam_on_device += adam_stats().fused_steps - adam0;
            r
        };
        progress(&row);
        rows.push(row);
    }
    Ok(AgreementReport {
        device: spec,
        adapter,
        batch_size: cfg.batch_size,
        lr: cfg.lr,
        seed: cfg.seed,
        tolerances: cfg.tolerances,
        rows,
        fast_conv_calls_on_device: conv_on_device,
        fused_adam_steps_on_device: adam_on_device,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Turns [`cilp_kernels::winograd::set_reference_forward`] on while it lives (the check's CPU
/// side), then back to what it was.
struct ReferenceForward(bool);

impl ReferenceForward {
    fn on() -> ReferenceForward {
        ReferenceForward(cilp_kernels::winograd::set_reference_forward(true))
    }
}

impl Drop for ReferenceForward {
    fn drop(&mut self) {
        cilp_kernels::winograd::set_reference_forward(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_against_itself_agrees_exactly_and_bad_requests_fail() {
        let cfg = AgreementConfig { models: vec!["projector".into(), "seed-projector".into()], ..Default::default() };
        let r = check(DeviceSpec::Cpu, &cfg, |_| {}).unwrap();
        assert!(r.ok(), "{}", r.table());
        for row in &r.rows {
            assert_eq!(row.output_max_abs_diff, 0.0, "{row:?}");
            assert_eq!(row.gradient_max_rel_diff, 0.0, "{row:?}");
            assert_eq!(row.step_max_diff_lr, 0.0, "{row:?}");
            assert!(row.loss_cpu > 0.0 && row.tensors == 6, "{row:?}");
        }
        // The fused kernels run on the CPU "device" too, so the counters see them there.
        assert!(r.fused_adam_steps_on_device > 0, "{r:?}");
        assert!(check(DeviceSpec::Cpu, &AgreementConfig { batch_size: 1, ..cfg.clone() }, |_| {}).is_err());
        let unknown = AgreementConfig { models: vec!["resnet".into()], ..cfg };
        assert!(check(DeviceSpec::Cpu, &unknown, |_| {}).unwrap_err().to_string().contains("resnet"));
    }

    #[test]
    fn inputs_are_deterministic_and_in_range() {
        let a = splitmix_values(1000, 3, 20.0, 50.0);
        assert_eq!(a, splitmix_values(1000, 3, 20.0, 50.0));
        assert_ne!(a, splitmix_values(1000, 4, 20.0, 50.0));
        assert!(a.iter().all(|x| (20.0..50.0).contains(x)));
        let mean = a.iter().sum::<f32>() / 1000.0;
        assert!((mean - 35.0).abs() < 1.5, "{mean}");
    }
}
