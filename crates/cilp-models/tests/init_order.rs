//! A seed's initial weights must not depend on the order in which code first reads the
//! parameters (burn initialises them lazily from the process-wide RNG). Its own test binary:
//! tests in parallel threads would advance that RNG between the two builds, and the tests here
//! take [`RNG`] for the same reason.

use burn::module::{Module, ModuleVisitor, Param};
use std::sync::Mutex;

use burn::tensor::{Device, Distribution, Tensor};
use cilp_models::{build_classifier, catalog, model_info};

/// Held by every test that seeds or draws from the process-wide RNG.
static RNG: Mutex<()> = Mutex::new(());

/// Reads every float parameter, in declaration order or reversed, and returns their values in
/// declaration order.
struct Read {
    reverse: bool,
    readers: Vec<Box<dyn Fn() -> Vec<f32>>>,
}

impl ModuleVisitor for Read {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let p = param.clone();
        self.readers.push(Box::new(move || p.val().into_data().try_to_vec::<f32>().unwrap()));
    }
}

fn values<M: Module>(m: &M, reverse: bool) -> Vec<Vec<f32>> {
    let mut r = Read { reverse, readers: Vec::new() };
    m.visit(&mut r);
    let n = r.readers.len();
    let order: Vec<usize> = if r.reverse { (0..n).rev().collect() } else { (0..n).collect() };
    let mut out = vec![Vec::new(); n];
    for i in order {
        out[i] = (r.readers[i])();
    }
    out
}

#[test]
fn initial_weights_do_not_depend_on_the_order_parameters_are_first_read() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    for name in ["early-fusion", "late-fusion-strided"] {
        device.seed(51);
        let forward = values(&build_classifier(name, &device).unwrap(), false);
        device.seed(51);
        let backward = values(&build_classifier(name, &device).unwrap(), true);
        assert!(forward.len() > 4, "{name}: {} parameters", forward.len());
        assert!(forward == backward, "{name}: the initial weights depend on the order the parameters are first read");
        device.seed(52);
        assert!(values(&build_classifier(name, &device).unwrap(), false) != forward, "{name}: the seed must matter");
    }
}

/// `catalog()` and `model_info` count parameters on lazily built modules: they must not
/// initialise (allocate and draw) the weights of every model, which would be slow and would
/// shift the RNG stream of a run that lists models before building its own.
#[test]
fn counting_parameters_draws_nothing_from_the_rng() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let draw = || Tensor::<1>::random([16], Distribution::Default, &device).into_data().try_to_vec::<f32>().unwrap();
    device.seed(51);
    let expected = draw();

    device.seed(51);
    let models = catalog();
    assert!(models.iter().any(|m| m.parameters > 10_000_000), "the catalog counts the large models");
    assert_eq!(model_info("late-fusion").unwrap().parameters, 13_147_202);
    assert_eq!(draw(), expected, "catalog()/model_info drew from the RNG: they initialised parameters");

    // The check can see a draw: building a model for training initialises it from the stream.
    device.seed(51);
    let _model = build_classifier("early-fusion", &device).unwrap();
    assert_ne!(draw(), expected, "build_classifier must draw its initial weights from the RNG");
}
