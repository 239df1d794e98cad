//! Import of PyTorch weights (NVIDIA's pretrained `lidar_cnn.pt`).
//!
//! Files are read with burn-store's `pytorch-reader`, a pure-Rust pickle interpreter: it only
//! *interprets* the handful of globals PyTorch uses to rebuild tensors (`torch._utils.
//! _rebuild_tensor_v2`, `collections.OrderedDict`, ...) and keeps any other global as an
//! opaque value, so loading never executes code from the file. Before that, every pickle in
//! the file is scanned (`pickle_guard`) and a file naming any other callable (`os.system`,
//! `builtins.eval`, ... — a file that would run code in Python's `torch.load`) is refused
//! with an error naming the file and the global. The storages' saved device
//! (`cuda:0` in `lidar_cnn.pt`) is ignored; the bytes are read on the host and uploaded to the
//! requested device.
//!
//! Key mapping (PyTorch `nn.Sequential` state dict -> [`LidarClassifier`]):
//!
//! | PyTorch                          | burn                                        |
//! |----------------------------------|---------------------------------------------|
//! | `embedder.{0,3,6,9}.weight/bias` | `embedder.blocks.{0..3}.conv.weight/bias`   |
//! | `classifier.{0,2}.weight/bias`   | `classifier.mlp.layers.{0,1}.weight/bias`   |
//!
//! Conv weights share PyTorch's `[out, in, kh, kw]` layout; Linear weights are stored
//! `[out, in]` by PyTorch and `[in, out]` by burn, so they are transposed.

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::store::pytorch_reader::{DType, PytorchReader};

use crate::ModelError;
use crate::nvidia::{LidarClassifier, LidarHead};
use crate::zoo::Classifier;

mod pickle_guard;

/// PyTorch indices of the convolutions in `lidar_cnn.pt`'s `embedder` Sequential
/// (Conv, ReLU, MaxPool repeated).
const EMBEDDER_CONV_INDICES: [usize; 4] = [0, 3, 6, 9];
/// PyTorch indices of the linears in its `classifier` Sequential (Linear, ReLU, Linear).
const CLASSIFIER_LINEAR_INDICES: [usize; 2] = [0, 2];

/// The largest `.pt`/`.pth` file [`StateDict::open`] accepts: 1 GiB.
///
/// NVIDIA's `lidar_cnn.pt` is 3.6 MB, and the largest classifier of the zoo has about 13.0M
/// parameters (52 MB in f32; about 156 MB even with Adam's two moments saved beside it), so
/// 1 GiB leaves more than 6x headroom over anything cilp can load, while a hostile or
/// mistaken path (a 5 GB sparse file) is refused before anything is read. Special files
/// (`/dev/zero`, a FIFO) are refused whatever their size.
pub const MAX_PT_BYTES: u64 = 1 << 30;

/// What a weights file should be, for error messages.
const PT_WHAT: &str = "a PyTorch weights file (.pt)";

/// A PyTorch state dict opened for reading.
pub struct StateDict {
    path: PathBuf,
    reader: PytorchReader,
}

impl StateDict {
    /// Open a `.pt`/`.pth` file (zip or legacy container). A missing file gives
    /// [`ModelError::FileNotFound`]; a file whose pickle names a callable a state dict does
    /// not use (one that would run code in Python) is refused with [`ModelError::PyTorch`]
    /// naming the file and the global, before anything else reads it. A path that is not a
    /// regular file (`/dev/zero`, a FIFO, a folder) or is larger than [`MAX_PT_BYTES`] is
    /// refused by name with [`ModelError::Read`] before anything is read.
    ///
    /// The safety scan reads the handle checked by [`cilp_data::io::open_bounded`]; the
    /// reader then opens the path again (burn-store's reader takes a path), so a file swapped
    /// between the two opens is not covered; the scan and the checks are about what a user
    /// points cilp at, not about a concurrent attacker with write access to the folder.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        if let Err(e) = std::fs::metadata(path)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Err(ModelError::FileNotFound { path: path.to_path_buf() });
        }
        let (file, _size) = cilp_data::io::open_bounded(path, MAX_PT_BYTES, PT_WHAT)?;
        pickle_guard::check_file(file).map_err(|e| ModelError::PyTorch { path: path.to_path_buf(), message: e.to_string() })?;
        let reader = PytorchReader::new(path).map_err(|e| ModelError::PyTorch { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(Self { path: path.to_path_buf(), reader })
    }

    /// The file's tensors as burn-store tensors (still unread: each is read from the file when
    /// its data is drawn), named by their state-dict keys. For importers that map keys
    /// themselves (`cilp-interop`).
    pub fn into_tensors(self) -> Vec<burn::store::burn_pack::Tensor> {
        self.reader.into_tensors().into_values().map(burn::store::bridge::from_pytorch).collect()
    }

    /// The file this state dict was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keys of the state dict, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = self.reader.keys();
        keys.sort();
        keys
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.reader.get(key).map(|t| t.shape().to_vec())
    }

    /// Read a float tensor as `f32` values (row-major), checking its shape.
    pub fn read_f32(&self, key: &str, expected_shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let tensor = self.reader.get(key).ok_or_else(|| ModelError::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
            available: self.keys().join(", "),
        })?;
        if tensor.shape() != expected_shape {
            return Err(ModelError::ShapeMismatch {
                path: self.path.clone(),
                key: key.to_string(),
                expected: expected_shape.to_vec(),
                found: tensor.shape().to_vec(),
            });
        }
        let bytes = tensor.read().map_err(|e| ModelError::PyTorch { path: self.path.clone(), message: format!("reading '{key}': {e}") })?;
        let values = match tensor.dtype() {
            DType::F32 => bytes.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect(),
            DType::F64 => bytes.chunks_exact(8).map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
            other => {
                return Err(ModelError::PyTorch {
                    path: self.path.clone(),
                    message: format!("tensor '{key}' has dtype {other:?}; expected float32/float64"),
                });
            }
        };
        Ok(values)
    }

    /// Load `{prefix}.weight` / `{prefix}.bias` into a conv layer of the same shape.
    pub fn load_conv2d(&self, conv: Conv2d, prefix: &str) -> Result<Conv2d, ModelError> {
        let shape: [usize; 4] = conv.weight.lazy_shape().dims();
        let device = conv.weight.lazy_device();
        let weight = self.read_f32(&format!("{prefix}.weight"), &shape)?;
        let mut conv = conv;
        conv.weight = Param::from_data(TensorData::new(weight, shape), &device);
        if conv.bias.is_some() {
            let bias = self.read_f32(&format!("{prefix}.bias"), &[shape[0]])?;
            conv.bias = Some(Param::from_data(TensorData::new(bias, [shape[0]]), &device));
        }
        Ok(conv)
    }

    /// Load `{prefix}.weight` (PyTorch `[out, in]`, transposed) / `{prefix}.bias` into a
    /// linear layer of the same size.
    pub fn load_linear(&self, linear: Linear, prefix: &str) -> Result<Linear, ModelError> {
        let [d_in, d_out]: [usize; 2] = linear.weight.lazy_shape().dims();
        let device = linear.weight.lazy_device();
        let w = self.read_f32(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let mut transposed = vec![0f32; w.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                transposed[i * d_out + o] = w[o * d_in + i];
            }
        }
        let mut linear = linear;
        linear.weight = Param::from_data(TensorData::new(transposed, [d_in, d_out]), &device);
        if linear.bias.is_some() {
            let bias = self.read_f32(&format!("{prefix}.bias"), &[d_out])?;
            linear.bias = Some(Param::from_data(TensorData::new(bias, [d_out]), &device));
        }
        Ok(linear)
    }

    /// Load the `classifier.{0,2}` linears into a [`LidarHead`].
    pub fn load_lidar_head(&self, head: LidarHead) -> Result<LidarHead, ModelError> {
        let mut head = head;
        let layers = std::mem::take(&mut head.mlp.layers);
        head.mlp.layers = layers
            .into_iter()
            .zip(CLASSIFIER_LINEAR_INDICES)
            .map(|(l, i)| self.load_linear(l, &format!("classifier.{i}")))
            .collect::<Result<_, _>>()?;
        Ok(head)
    }

    /// Load the whole `lidar_cnn.pt` state dict into a [`LidarClassifier`].
    pub fn load_lidar_classifier(&self, model: LidarClassifier) -> Result<LidarClassifier, ModelError> {
        let mut model = model;
        for (block, index) in model.embedder.blocks.iter_mut().zip(EMBEDDER_CONV_INDICES) {
            let conv = block.conv.clone();
            block.conv = self.load_conv2d(conv, &format!("embedder.{index}"))?;
        }
        model.classifier = self.load_lidar_head(model.classifier)?;
        Ok(model)
    }
}

/// Load NVIDIA's pretrained LiDAR classifier (`lidar_cnn.pt`, a PyTorch state dict with keys
/// `embedder.{0,3,6,9}.{weight,bias}` and `classifier.{0,2}.{weight,bias}`) onto `device`.
///
/// Errors name the file and the missing or mismatched key (with both shapes).
pub fn load_lidar_classifier_pt(path: &Path, device: &Device) -> Result<LidarClassifier, ModelError> {
    StateDict::open(path)?.load_lidar_classifier(LidarClassifier::new(device))
}

/// Load PyTorch weights into a zoo classifier: the full `lidar_cnn.pt` for
/// `nvidia-lidar-classifier`, or only its `classifier.*` head for `rgb-to-lidar`. Other
/// classifiers have no PyTorch counterpart and give [`ModelError::Unsupported`].
pub fn load_pytorch_weights(classifier: Classifier, path: &Path) -> Result<Classifier, ModelError> {
    match classifier {
        Classifier::Lidar(m) => Ok(Classifier::Lidar(StateDict::open(path)?.load_lidar_classifier(m)?)),
        Classifier::RgbToLidar(mut m) => {
            m.head = StateDict::open(path)?.load_lidar_head(m.head)?;
            Ok(Classifier::RgbToLidar(m))
        }
        other => {
            Err(ModelError::Unsupported(format!("no PyTorch weight mapping for a {} classifier ({})", other.kind_name(), path.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_err(path: &Path) -> ModelError {
        match StateDict::open(path) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(e) => e,
        }
    }

    #[test]
    fn special_and_oversized_files_are_refused_by_name_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        // `--weights /dev/zero` used to be read until memory ran out (through a symlink too).
        let link = dir.path().join("zero.pt");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let fifo = dir.path().join("pipe.pt");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for (p, kind) in [
            (Path::new("/dev/zero"), "character device"),
            (link.as_path(), "character device"),
            (fifo.as_path(), "FIFO"),
            (dir.path(), "folder"),
        ] {
            let e = open_err(p);
            assert!(matches!(e, ModelError::Read(_)), "{e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(&p.display().to_string())
                    && msg.contains(kind)
                    && msg.contains("not a regular file")
                    && msg.contains("expected a PyTorch weights file"),
                "{msg}"
            );
        }
        // Sparse: no disk used; over the cap, refused without reading.
        let big = dir.path().join("big.pt");
        std::fs::File::create(&big).unwrap().set_len(MAX_PT_BYTES + 1).unwrap();
        let msg = open_err(&big).to_string();
        assert!(msg.contains("big.pt") && msg.contains(&format!("{}-byte limit", MAX_PT_BYTES)), "{msg}");
        // A missing file is still reported as missing.
        assert!(matches!(open_err(&dir.path().join("missing.pt")), ModelError::FileNotFound { .. }));
    }
}
