//! Time a few Adam steps of a zoo classifier on the CPU (Flex backend).
//!
//! `cargo run --release -p cilp-models --example train_step -- late-fusion 32 3`

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use cilp_models::{ModelInputs, build_classifier};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("late-fusion", String::as_str);
    let batch: usize = args.get(2).map_or(32, |s| s.parse().expect("batch size"));
    let steps: usize = args.get(3).map_or(3, |s| s.parse().expect("steps"));

    let device = Device::flex().autodiff();
    let mut model = build_classifier(name, &device).expect("zoo name");
    let mut optim = AdamConfig::new().init();
    let inputs = ModelInputs {
        rgb: Some(Tensor::random([batch, 4, 64, 64], Distribution::Default, &device)),
        xyza: Some(Tensor::random([batch, 4, 64, 64], Distribution::Default, &device)),
        depth: Some(Tensor::random([batch, 1, 64, 64], Distribution::Uniform(20.0, 50.0), &device)),
    };
    let targets = Tensor::<1, Int>::from_data(TensorData::new((0..batch as i64).map(|i| i % 2).collect::<Vec<_>>(), [batch]), &device);
    println!("{name}: {} parameters, batch {batch}", model.num_params());
    for step in 0..steps {
        let t = Instant::now();
        let logits = model.forward(&inputs);
        let loss = model.loss(logits, targets.clone());
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        device.sync().expect("sync");
        println!("step {step}: loss {value:.4} in {:.3} s", t.elapsed().as_secs_f64());
    }
}
