//! The seed CILP stage's first training steps from a known start, for a step-by-step comparison
//! with PyTorch (`scripts/seed_cilp_trajectory.py`).
//!
//! It builds `seed-cilp` exactly as `cilp assess --variant seed --seed SEED` does (same data
//! split, same initial weights), writes those weights as a PyTorch-named safetensors file, takes
//! the first `STEPS` training batches of the full preset's split in a fixed order, writes their
//! inputs, and trains them with cilp's optimiser (Adam, lr 1e-4, epsilon 1e-8), recording the loss
//! and logit scale of every step. The PyTorch script loads the same weights and inputs, runs the
//! same steps, and compares.
//!
//! ```text
//! cargo run --release -p cilp-assess --example seed_cilp_trajectory -- DATA OUT [STEPS] [SEED]
//! ```
//!
//! OUT receives `init.safetensors` (+ sidecar), `inputs.f32` (for the first 100 steps at most:
//! per step RGB then XYZA, each `[32, 4, 64, 64]` little-endian f32), `trajectory.json`
//! (`order`, `files`, `loss`, `logit_scale`, and the probe's `train_files` / `val_files` with
//! their labels) and `embeddings.f32`: after the last step, the image encoder's un-normalised
//! output (`[n, 200]`) for every training sample, then every validation sample (the embedding the
//! seed assessment's class probe and projector read).

use std::io::Write;
use std::path::PathBuf;

use burn::optim::GradientsParams;
use burn::prelude::*;
use cilp_assess::AssessPreset;
use cilp_assess::seed::SeedAssessConfig;
use cilp_interop::{ExportOptions, export_safetensors};
use cilp_models::zoo::{InputKind, ModelSpec, build_seed_cilp};
use cilp_train::batching::make_batch;
use cilp_train::device::{init_seeded, train_device};

/// Steps whose inputs are written out (the PyTorch script reads the others from the files).
const DUMPED_STEPS: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, out, rest @ ..] = args.as_slice() else {
        return Err("usage: seed_cilp_trajectory DATA OUT [STEPS] [SEED]".into());
    };
    let steps: usize = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let seed: u64 = rest.get(1).map(|s| s.parse()).transpose()?.unwrap_or(51);
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    cilp_kernels::flush_denormals(); // as `fit` does

    let cfg = SeedAssessConfig::preset(AssessPreset::Full, data);
    let (prepared, _) = cilp_train::data::prepare(&cfg.data, seed)?;
    let (ds, train) = (&prepared.dataset, &prepared.split.train);
    let b = cfg.batch_size;
    if train.len() < steps * b {
        return Err(format!("{} training samples, {steps} steps of {b} need more", train.len()).into());
    }
    // A fixed order that mixes the classes: a stride through the training split.
    let stride = 7919; // prime, coprime with any split size not a multiple of it
    let order: Vec<usize> = (0..steps * b).map(|k| train[(k * stride) % train.len()]).collect();

    let device = train_device(cfg.device)?;
    // The same draw as the assessment's CILP stage (seed + 1).
    let mut model = init_seeded(&device, seed.wrapping_add(1), |d| Ok(build_seed_cilp(d)))?;
    let opts = ExportOptions { overwrite: true, ..ExportOptions::default() };
    export_safetensors(&model.clone().valid(), ModelSpec::SeedCilp, &out.join("init.safetensors"), &opts)?;

    let mut optim = cilp_kernels::adam::adam_optimizer_with_epsilon(cfg.adam_epsilon);
    let mut inputs = std::io::BufWriter::new(std::fs::File::create(out.join("inputs.f32"))?);
    let (mut losses, mut scales) = (Vec::new(), Vec::new());
    for (s, batch) in order.chunks(b).enumerate() {
        let (x, _, _) = make_batch(ds, batch, &[InputKind::Rgb, InputKind::Xyza], cfg.data.xyza, &device);
        let (rgb, xyza) = (x.rgb.expect("rgb"), x.xyza.expect("xyza"));
        for t in [&rgb, &xyza].into_iter().filter(|_| s < DUMPED_STEPS) {
            let v: Vec<f32> = t.clone().into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
            for f in v {
                inputs.write_all(&f.to_le_bytes())?;
            }
        }
        let (img, lid) = model.forward(rgb, xyza);
        let loss = model.loss(img, lid);
        let value: f32 = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.cilp.lr, model, grads);
        let scale = model.clone().valid().logit_scale_value();
        losses.push(value);
        scales.push(scale);
        if s % 10 == 0 || s + 1 == steps {
            println!("step {s:4}  loss {value:.6}  logit scale after {scale:.6}");
        }
    }
    inputs.flush()?;
    // class/stem of every sample, so the PyTorch script can check the inputs against its own
    // reading of the files.
    let files: Vec<String> = order
        .iter()
        .map(|&i| {
            let smp = ds.sample(i);
            format!("{}/{}", ds.classes()[smp.class], smp.stem)
        })
        .collect();
    // The image embeddings after the last step (eval mode), for the class probe.
    let eval = device.clone().without_autodiff();
    let image = model.clone().valid().image;
    let split = &prepared.split;
    let mut emb = std::io::BufWriter::new(std::fs::File::create(out.join("embeddings.f32"))?);
    for chunk in split.train.iter().chain(split.val.iter()).copied().collect::<Vec<_>>().chunks(256) {
        let (x, _, _) = make_batch(ds, chunk, &[InputKind::Rgb], cfg.data.xyza, &eval);
        let v: Vec<f32> = image.forward(x.rgb.expect("rgb")).into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        for f in v {
            emb.write_all(&f.to_le_bytes())?;
        }
    }
    emb.flush()?;
    let name = |i: &usize| {
        let smp = ds.sample(*i);
        format!("{}/{}", ds.classes()[smp.class], smp.stem)
    };
    let json = serde_json::json!({
        "seed": seed, "batch_size": b, "steps": steps, "dumped_steps": steps.min(DUMPED_STEPS),
        "lr": cfg.cilp.lr, "adam_epsilon": cfg.adam_epsilon,
        "order": order, "files": files, "loss": losses, "logit_scale": scales,
        "train_files": split.train.iter().map(name).collect::<Vec<_>>(),
        "train_labels": split.train.iter().map(|&i| ds.label(i)).collect::<Vec<_>>(),
        "val_files": split.val.iter().map(name).collect::<Vec<_>>(),
        "val_labels": split.val.iter().map(|&i| ds.label(i)).collect::<Vec<_>>(),
    });
    std::fs::write(out.join("trajectory.json"), serde_json::to_string_pretty(&json)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
