//! Loss functions, as pure functions on tensors (they work on plain and autodiff devices alike).
//!
//! Every loss returns a one-element tensor `[1]` averaged over the batch, like PyTorch's
//! `reduction="mean"`.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Row-wise L2 normalisation, `x / max(||x||, 1e-12)` (PyTorch's `F.normalize`).
///
/// - input/output: `[batch, features]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12); // [batch, 1]
    x / norm
}

/// Cross-entropy of logits against integer class targets (PyTorch `F.cross_entropy`).
///
/// - logits: `[batch, classes]`
/// - targets: `[batch]`, values in `0..classes`
/// - output: `[1]`, the mean over the batch
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [batch, _] = logits.dims();
    let log_probs = log_softmax(logits, 1); // [batch, classes]
    let picked = log_probs.gather(1, targets.reshape([batch, 1])); // [batch, 1]
    picked.mean().neg()
}

/// Binary cross-entropy on logits (PyTorch `BCEWithLogitsLoss`), in the numerically stable form
/// `max(x, 0) - x * y + ln(1 + exp(-|x|))`.
///
/// - logits, targets: the same shape (targets in `[0, 1]`)
/// - output: `[1]`, the mean over all elements
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    let softplus_neg_abs = logits.clone().abs().neg().exp().log1p();
    (logits.clone().clamp_min(0.0) - logits * targets + softplus_neg_abs).mean()
}

/// Mean squared error (PyTorch `MSELoss`): output `[1]`.
pub fn mse<const D: usize>(prediction: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    (prediction - target).square().mean()
}

/// The classification loss matching a logit layout: [`bce_with_logits`] for a single logit
/// (`[batch, 1]`, class 1 = positive) and [`cross_entropy`] otherwise (`[batch, classes]`).
///
/// - targets: `[batch]` integer classes (cubes = 0, spheres = 1)
pub fn classification_loss(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [batch, classes] = logits.dims();
    if classes == 1 { bce_with_logits(logits, targets.float().reshape([batch, 1])) } else { cross_entropy(logits, targets) }
}

/// Symmetric contrastive cross-entropy of a square logit matrix against `arange(B)`: the mean of
/// the row-wise (image -> LiDAR) and column-wise (LiDAR -> image) cross-entropies.
///
/// - logits: `[batch, batch]`; output `[1]`
pub fn symmetric_cross_entropy(logits: Tensor<2>) -> Tensor<1> {
    let [batch, cols] = logits.dims();
    assert_eq!(batch, cols, "contrastive logits must be square, got [{batch}, {cols}]");
    let targets = Tensor::<1, Int>::arange(0..batch as i64, &logits.device());
    let rows = cross_entropy(logits.clone(), targets.clone());
    let columns = cross_entropy(logits.transpose(), targets);
    (rows + columns).div_scalar(2.0)
}

/// NVIDIA's CILP logits: cosine similarity of every image/LiDAR pair mapped by `(sim + 1) / 2`.
///
/// - img, lidar: `[batch, features]` (normalised here, so need not be unit length)
/// - output: `[batch, batch]`, rows = images, columns = LiDAR samples
pub fn nvidia_similarity_logits(img: Tensor<2>, lidar: Tensor<2>) -> Tensor<2> {
    let sim = l2_normalize(img).matmul(l2_normalize(lidar).transpose()); // [batch, batch]
    sim.add_scalar(1.0).div_scalar(2.0)
}

/// NVIDIA's CILP loss: [`symmetric_cross_entropy`] of [`nvidia_similarity_logits`].
/// Bounded logits: it cannot go below about 2.52 at batch 32 (chance is `ln 32 = 3.47`).
pub fn cilp_nvidia_loss(img: Tensor<2>, lidar: Tensor<2>) -> Tensor<1> {
    symmetric_cross_entropy(nvidia_similarity_logits(img, lidar))
}

/// CLIP logits: `exp(s) * img @ lidar^T` (the embeddings are used as given; the CILP encoders
/// already L2-normalise them).
///
/// - img, lidar: `[batch, features]`; logit_scale `s`: `[1]`
/// - output: `[batch, batch]`
pub fn clip_logits(img: Tensor<2>, lidar: Tensor<2>, logit_scale: Tensor<1>) -> Tensor<2> {
    let scale = logit_scale.exp().reshape([1, 1]); // [1, 1]
    img.matmul(lidar.transpose()) * scale // [batch, batch]
}

/// CLIP loss: [`symmetric_cross_entropy`] of [`clip_logits`].
pub fn clip_loss(img: Tensor<2>, lidar: Tensor<2>, logit_scale: Tensor<1>) -> Tensor<1> {
    symmetric_cross_entropy(clip_logits(img, lidar, logit_scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::flex()
    }

    fn t2(rows: &[&[f64]]) -> Tensor<2> {
        let r = rows.len();
        let c = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|row| row.iter().map(|&v| v as f32)).collect();
        Tensor::from_data(TensorData::new(flat, [r, c]), &dev())
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_data().try_into_vec_as::<f32>().unwrap()[0] as f64
    }

    fn ints(v: &[i64]) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &dev())
    }

    // ---- naive f64 references ----
    fn ref_ce(logits: &[Vec<f64>], targets: &[usize]) -> f64 {
        let mut total = 0.0;
        for (row, &t) in logits.iter().zip(targets) {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            total += lse - row[t];
        }
        total / logits.len() as f64
    }

    fn ref_cos(a: &[f64], b: &[f64]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (na * nb)
    }

    fn ref_symmetric(m: &[Vec<f64>]) -> f64 {
        let n = m.len();
        let targets: Vec<usize> = (0..n).collect();
        let mt: Vec<Vec<f64>> = (0..n).map(|j| (0..n).map(|i| m[i][j]).collect()).collect();
        (ref_ce(m, &targets) + ref_ce(&mt, &targets)) / 2.0
    }

    const IMG: [[f64; 3]; 3] = [[1.0, 0.5, -0.2], [0.1, -1.0, 0.3], [0.7, 0.7, 0.7]];
    const LID: [[f64; 3]; 3] = [[0.9, 0.4, 0.0], [-0.2, -0.8, 0.5], [0.3, 0.1, 1.2]];

    fn rows(a: &[[f64; 3]; 3]) -> Vec<Vec<f64>> {
        a.iter().map(|r| r.to_vec()).collect()
    }

    fn tensor3(a: &[[f64; 3]; 3]) -> Tensor<2> {
        let r: Vec<&[f64]> = a.iter().map(|r| r.as_slice()).collect();
        t2(&r)
    }

    #[test]
    fn cross_entropy_matches_reference() {
        let logits = vec![vec![2.0, -1.0, 0.5], vec![0.0, 0.0, 0.0], vec![-3.0, 4.0, 1.0]];
        let targets = [0usize, 2, 1];
        let got = scalar(cross_entropy(t2(&[&logits[0], &logits[1], &logits[2]]), ints(&[0, 2, 1])));
        let want = ref_ce(&logits, &targets);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Uniform logits give ln(C).
        let got = scalar(cross_entropy(t2(&[&[0.0, 0.0]]), ints(&[1])));
        assert!((got - 2f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn bce_with_logits_matches_reference_and_is_stable() {
        let x = [-3.0, -0.5, 0.0, 0.7, 5.0, 120.0, -120.0];
        let y = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        // Naive f64 reference: -[y ln σ(x) + (1-y) ln(1-σ(x))], fine for moderate |x|; the two
        // extreme logits have known values (x = 120, y = 0 -> 120; x = -120, y = 0 -> ~0).
        let naive = |x: f64, y: f64| {
            let sig = 1.0 / (1.0 + (-x).exp());
            -(y * sig.ln() + (1.0 - y) * (1.0 - sig).ln())
        };
        let want: f64 = (x[..5].iter().zip(&y[..5]).map(|(&x, &y)| naive(x, y)).sum::<f64>() + 120.0 + 0.0) / x.len() as f64;
        let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let ys: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let got = scalar(bce_with_logits(
            Tensor::<1>::from_data(TensorData::new(xs, [7]), &dev()),
            Tensor::<1>::from_data(TensorData::new(ys, [7]), &dev()),
        ));
        assert!(got.is_finite());
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn classification_loss_dispatches_on_width() {
        let one = scalar(classification_loss(t2(&[&[0.3], &[-1.2]]), ints(&[1, 0])));
        let sp = |x: f64| (1.0 + x.exp()).ln(); // softplus
        let want = (sp(-0.3) + sp(-1.2)) / 2.0;
        assert!((one - want).abs() < 1e-5, "{one} vs {want}");
        let two = scalar(classification_loss(t2(&[&[0.3, -0.1]]), ints(&[0])));
        let want = ref_ce(&[vec![0.3, -0.1]], &[0]);
        assert!((two - want).abs() < 1e-6);
    }

    #[test]
    fn mse_matches_reference() {
        let got = scalar(mse(t2(&[&[1.0, 2.0], &[3.0, 4.0]]), t2(&[&[1.5, 2.0], &[1.0, 5.0]])));
        let want = (0.25 + 0.0 + 4.0 + 1.0) / 4.0;
        assert!((got - want).abs() < 1e-6);
    }

    #[test]
    fn nvidia_loss_matches_reference() {
        let (img, lid) = (rows(&IMG), rows(&LID));
        let m: Vec<Vec<f64>> = img.iter().map(|a| lid.iter().map(|b| (ref_cos(a, b) + 1.0) / 2.0).collect()).collect();
        let want = ref_symmetric(&m);
        let got = scalar(cilp_nvidia_loss(tensor3(&IMG), tensor3(&LID)));
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Orthonormal embeddings at B=32: diagonal logit 1, off-diagonal 0.5.
        let eye = Tensor::<2>::eye(32, &dev());
        let got = scalar(cilp_nvidia_loss(eye.clone(), eye));
        let want = -1.0 + (1f64.exp() + 31.0 * 0.5f64.exp()).ln();
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        // REFERENCE §3's floor of about 2.52 is the same expression with off-diagonal logits 0.
        assert!((-1.0 + (1f64.exp() + 31.0).ln() - 2.52).abs() < 0.005);
    }

    #[test]
    fn clip_loss_matches_reference() {
        let s = (1.0f64 / 0.07).ln();
        let (img, lid) = (rows(&IMG), rows(&LID));
        let m: Vec<Vec<f64>> =
            img.iter().map(|a| lid.iter().map(|b| s.exp() * a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()).collect()).collect();
        let want = ref_symmetric(&m);
        let scale = Tensor::<1>::from_floats([s as f32], &dev());
        let got = scalar(clip_loss(tensor3(&IMG), tensor3(&LID), scale));
        assert!((got - want).abs() < 1e-3 * want.max(1.0), "{got} vs {want}");
    }

    #[test]
    fn losses_backpropagate() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_floats([[0.2, -0.4], [1.0, 0.3]], &device).require_grad();
        let loss = cross_entropy(x.clone(), Tensor::from_data(TensorData::new(vec![1i64, 0], [2]), &device));
        let grads = loss.backward();
        let g = x.grad(&grads).expect("gradient").into_data().try_into_vec_as::<f32>().unwrap();
        // d/dx of mean CE = (softmax - onehot) / B
        let p0 = 1.0 / (1.0 + (-0.6f64).exp()); // softmax[0][0] = σ(0.2 - -0.4)
        assert!((g[0] as f64 - p0 / 2.0).abs() < 1e-5, "{g:?}");
    }
}
