//! A seed's initial weights must not depend on the order in which code first reads the
//! parameters (burn initialises them lazily from the process-wide RNG). Its own test binary:
//! tests in parallel threads would advance that RNG between the two builds.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use cilp_models::build_classifier;

/// Reads every float parameter, in declaration order or reversed, and returns their values in
/// declaration order.
struct Read {
    reverse: bool,
    readers: Vec<Box<dyn Fn() -> Vec<f32>>>,
}

impl ModuleVisitor for Read {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let p = param.clone();
        self.readers.push(Box::new(move || p.val().into_data().to_vec::<f32>().unwrap()));
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
    let device = Device::default();
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
