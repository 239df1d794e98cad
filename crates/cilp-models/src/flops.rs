//! FLOP counts of the benchmarked architectures, from their layer shapes.
//!
//! Convention (the usual one, also used by `bench/pytorch_bench.py`): one multiply-add is
//! 2 FLOPs; only convolutions and linear layers are counted (bias, ReLU, pooling, the loss and
//! the optimiser are a fraction of a percent and are left out).
//!
//! - forward: `2 * C_in * k * k * C_out * H_out * W_out` per conv, `2 * in * out` per linear;
//! - training step: forward + weight gradient (same cost as the forward) + input gradient (same
//!   cost again), except for the first layer of each input branch, whose input gradient is not
//!   needed (PyTorch and burn both skip it).

use crate::{Downsample, FusionMode};

/// One counted layer, per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Square `k x k` convolution.
    Conv { cin: usize, cout: usize, k: usize, h_out: usize, w_out: usize },
    /// Fully connected layer.
    Linear { inputs: usize, outputs: usize },
}

impl Layer {
    /// Forward FLOPs of one sample.
    pub fn forward_flops(&self) -> u64 {
        match *self {
            Layer::Conv { cin, cout, k, h_out, w_out } => 2 * (cin * k * k * cout * h_out * w_out) as u64,
            Layer::Linear { inputs, outputs } => 2 * (inputs * outputs) as u64,
        }
    }
}

/// The layers of a network, as independent input branches (each branch's first layer gets no
/// input gradient) followed by shared layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// Input branches (e.g. the RGB and the XYZA trunk).
    pub branches: Vec<Vec<Layer>>,
    /// Layers after the branches are merged.
    pub shared: Vec<Layer>,
}

impl Network {
    /// Forward FLOPs per sample.
    pub fn forward_flops(&self) -> u64 {
        self.branches.iter().flatten().chain(&self.shared).map(Layer::forward_flops).sum()
    }

    /// FLOPs of one training step per sample (forward + backward; see the module docs).
    pub fn train_flops(&self) -> u64 {
        let first: u64 = self.branches.iter().filter_map(|b| b.first()).map(Layer::forward_flops).sum();
        3 * self.forward_flops() - first
    }
}

/// 3x3 / pad-1 conv trunk of `channels`, starting at `side` x `side`, with the given
/// downsampling (every block halves the side).
pub fn conv_trunk(cin: usize, channels: &[usize], side: usize, down: Downsample) -> Vec<Layer> {
    let mut layers = Vec::new();
    let (mut c, mut s) = (cin, side);
    for &cout in channels {
        let half = s / 2;
        match down {
            Downsample::MaxPool => {
                layers.push(Layer::Conv { cin: c, cout, k: 3, h_out: s, w_out: s });
            }
            Downsample::StridedExtraConv => {
                layers.push(Layer::Conv { cin: c, cout, k: 3, h_out: s, w_out: s });
                layers.push(Layer::Conv { cin: cout, cout, k: 3, h_out: half, w_out: half });
            }
            Downsample::StridedConv => {
                layers.push(Layer::Conv { cin: c, cout, k: 3, h_out: half, w_out: half });
            }
        }
        c = cout;
        s = half;
    }
    layers
}

/// Linear layers of an MLP with the given widths.
pub fn mlp(widths: &[usize]) -> Vec<Layer> {
    widths.windows(2).map(|w| Layer::Linear { inputs: w[0], outputs: w[1] }).collect()
}

const SEED: [usize; 3] = [25, 50, 100];
const NVIDIA: [usize; 4] = [50, 100, 200, 200];

/// Seed `Embedder(cin, out)` as one branch.
pub fn seed_embedder(cin: usize, out: usize, down: Downsample) -> Vec<Layer> {
    let mut l = conv_trunk(cin, &SEED, 64, down);
    l.extend(mlp(&[6400, 1000, 100, out]));
    l
}

/// NVIDIA CILP embedder (`cin` = 4 image, 1 depth): conv 50-100-200-200 with pools,
/// 3200 -> 100 -> 200.
pub fn nvidia_embedder(cin: usize) -> Vec<Layer> {
    let mut l = conv_trunk(cin, &NVIDIA, 64, Downsample::MaxPool);
    l.extend(mlp(&[3200, 100, 200]));
    l
}

/// Late fusion.
pub fn late_fusion(down: Downsample) -> Network {
    Network { branches: vec![seed_embedder(4, 100, down), seed_embedder(4, 100, down)], shared: mlp(&[200, 50, 2]) }
}

/// Intermediate fusion.
pub fn intermediate(mode: FusionMode, down: Downsample) -> Network {
    Network {
        branches: vec![conv_trunk(4, &SEED, 64, down), conv_trunk(4, &SEED, 64, down)],
        shared: mlp(&[mode.fused_channels(100) * 64, 1000, 100, 2]),
    }
}

/// Early fusion: one `Embedder(8, 2)`.
pub fn early_fusion(down: Downsample) -> Network {
    Network { branches: vec![seed_embedder(8, 2, down)], shared: vec![] }
}

/// NVIDIA LiDAR classifier: conv 1->50->100->200->200, 3200 -> 100 -> 1.
pub fn lidar_classifier() -> Network {
    let mut l = conv_trunk(1, &NVIDIA, 64, Downsample::MaxPool);
    l.extend(mlp(&[3200, 100, 1]));
    Network { branches: vec![l], shared: vec![] }
}

/// Projector 200 -> 1000 -> 500 -> 3200.
pub fn projector() -> Network {
    Network { branches: vec![mlp(&[200, 1000, 500, 3200])], shared: vec![] }
}

impl crate::ModelSpec {
    /// The FLOP model of a zoo classifier (`None` for the contrastive, projector and seed
    /// assessment models, whose shapes are not described here). Studies use it to start their
    /// longest runs first.
    pub fn network(&self) -> Option<Network> {
        use crate::ModelSpec;
        Some(match *self {
            ModelSpec::LateFusion(d) => late_fusion(d),
            ModelSpec::Intermediate(m, d) => intermediate(m, d),
            ModelSpec::Early(d) => early_fusion(d),
            ModelSpec::Single(_) => Network { branches: vec![seed_embedder(4, 2, Downsample::MaxPool)], shared: vec![] },
            ModelSpec::LidarClassifier => lidar_classifier(),
            ModelSpec::RgbToLidar => {
                let mut l = nvidia_embedder(4);
                l.extend(mlp(&[200, 1000, 500, 3200, 100, 1]));
                Network { branches: vec![l], shared: vec![] }
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_and_linear_by_hand() {
        // 2 * 4 * 9 * 25 * 64 * 64
        let c = Layer::Conv { cin: 4, cout: 25, k: 3, h_out: 64, w_out: 64 };
        assert_eq!(c.forward_flops(), 7_372_800);
        assert_eq!(Layer::Linear { inputs: 6400, outputs: 1000 }.forward_flops(), 12_800_000);
    }

    #[test]
    fn nvidia_embedder_by_hand() {
        // convs: 2*4*9*50*4096 + 2*50*9*100*1024 + 2*100*9*200*256 + 2*200*9*200*64
        //      = 14_745_600 + 92_160_000 + 92_160_000 + 46_080_000 = 245_145_600
        // linears: 2*3200*100 + 2*100*200 = 640_000 + 40_000
        let n = Network { branches: vec![nvidia_embedder(4)], shared: vec![] };
        assert_eq!(n.forward_flops(), 245_825_600);
        // training: 3 * forward - first conv's input gradient
        assert_eq!(n.train_flops(), 3 * 245_825_600 - 14_745_600);
    }

    #[test]
    fn seed_models_by_hand() {
        // seed trunk (4 in): 2*4*9*25*4096 + 2*25*9*50*1024 + 2*50*9*100*256
        let trunk = 7_372_800 + 23_040_000 + 23_040_000;
        let head = 2 * (6400 * 1000 + 1000 * 100 + 100 * 100);
        let late = late_fusion(Downsample::MaxPool);
        assert_eq!(late.forward_flops(), 2 * (trunk + head) + 2 * (200 * 50 + 50 * 2));
        let add = intermediate(FusionMode::Add, Downsample::MaxPool);
        assert_eq!(add.forward_flops(), 2 * trunk + 2 * (6400 * 1000 + 1000 * 100 + 100 * 2));
        let concat = intermediate(FusionMode::Concat, Downsample::MaxPool);
        assert_eq!(concat.forward_flops(), 2 * trunk + 2 * (12800 * 1000 + 1000 * 100 + 100 * 2));
        // early fusion's first conv has 8 input channels
        let early = early_fusion(Downsample::MaxPool);
        assert_eq!(early.forward_flops(), 2 * 8 * 9 * 25 * 4096 + 23_040_000 + 23_040_000 + 2 * (6_400_000 + 100_000 + 200));
        assert_eq!(early.train_flops(), 3 * early.forward_flops() - 2 * 8 * 9 * 25 * 4096);
    }

    #[test]
    fn strided_variants() {
        // extra conv C->C at half the side after each main conv
        let t = conv_trunk(4, &SEED, 64, Downsample::StridedExtraConv);
        assert_eq!(t.len(), 6);
        assert_eq!(t[1], Layer::Conv { cin: 25, cout: 25, k: 3, h_out: 32, w_out: 32 });
        // strided main conv: output at half the side
        let t = conv_trunk(4, &SEED, 64, Downsample::StridedConv);
        assert_eq!(t[0].forward_flops(), 2 * 4 * 9 * 25 * 32 * 32);
    }

    #[test]
    fn every_bench_classifier_has_a_network() {
        use crate::ModelSpec;
        for spec in ModelSpec::all() {
            let has = spec.network().is_some();
            let classifier = matches!(
                spec,
                ModelSpec::LateFusion(_)
                    | ModelSpec::Intermediate(..)
                    | ModelSpec::Early(_)
                    | ModelSpec::Single(_)
                    | ModelSpec::LidarClassifier
                    | ModelSpec::RgbToLidar
            );
            assert_eq!(has, classifier, "{}", spec.name());
        }
        // the fusion study's order by cost: late and concat, then add and hadamard, then early
        let f = |n: &str| ModelSpec::parse(n).unwrap().network().unwrap().train_flops();
        assert!(f("late-fusion") > f("intermediate-add"));
        assert!(f("intermediate-concat") > f("intermediate-add"));
        assert_eq!(f("intermediate-add"), f("intermediate-hadamard"));
        assert!(f("intermediate-add") > f("early-fusion"));
    }

    #[test]
    fn projector_and_lidar() {
        assert_eq!(projector().forward_flops(), 2 * (200 * 1000 + 1000 * 500 + 500 * 3200));
        let l = lidar_classifier();
        assert_eq!(l.forward_flops(), 2 * 9 * 50 * 4096 + 92_160_000 * 2 + 46_080_000 + 640_200);
    }
}
