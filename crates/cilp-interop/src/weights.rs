//! Writing a zoo model to `.safetensors` with PyTorch names, and reading `.safetensors` / `.pt`
//! files with PyTorch names back into a zoo model, through burn-store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleContext, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    SafetensorsStore, bridge,
};
use burn::tensor::{DType, Shape};
use cilp_models::{Classifier, ModelSpec};

use crate::keymap::KeyMap;
use crate::sidecar::{RunProvenance, Sidecar, sidecar_path};
use crate::{InteropError, Result};

/// The largest weights file read: 1 GiB, the same bound as `.pt` files
/// ([`cilp_models::pytorch::MAX_PT_BYTES`]). The largest zoo model holds about 13.4M
/// parameters (54 MB in float32), so this leaves more than 18x headroom while a mistaken path
/// (a multi-GB file) is refused before anything is read.
pub const MAX_WEIGHTS_BYTES: u64 = cilp_models::pytorch::MAX_PT_BYTES;

/// What a weights file should be, for error messages.
const WEIGHTS_WHAT: &str = "a weights file (.safetensors or PyTorch .pt)";

/// A weights file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightsFormat {
    /// Hugging Face safetensors.
    Safetensors,
    /// A PyTorch `torch.save` state dict (zip or legacy pickle).
    PyTorch,
}

impl std::fmt::Display for WeightsFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightsFormat::Safetensors => "safetensors",
            WeightsFormat::PyTorch => "PyTorch state-dict",
        })
    }
}

/// Options of [`export_safetensors`].
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Replace an existing file (and its sidecar); otherwise an existing file is refused.
    pub overwrite: bool,
    /// The XYZA convention the model was trained with (the sidecar says how to feed it);
    /// `None`: cilp's default (`seed`).
    pub xyza: Option<cilp_data::tensorize::XyzaConvention>,
    /// The run the weights come from.
    pub run: Option<RunProvenance>,
}

/// What [`export_safetensors`] wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The `.safetensors` file.
    pub path: PathBuf,
    /// The JSON sidecar beside it.
    pub sidecar: PathBuf,
    /// The sidecar's contents.
    pub info: Sidecar,
}

/// Reshapes the `[1]` parameters that PyTorch holds as 0-d tensors (the logit scale), in one
/// direction. Keyed by burn path: both the collector and the applier hand adapters the
/// parameter's path in the module.
#[derive(Clone)]
struct ScalarAdapter {
    paths: Vec<String>,
    to_pytorch: bool,
}

impl ModuleAdapter for ScalarAdapter {
    fn adapt(&self, tensor: PackTensor, _ctx: ModuleContext<'_>) -> PackTensor {
        if !self.paths.contains(&tensor.name) {
            return tensor;
        }
        let (from, to): (&[usize], Vec<usize>) = if self.to_pytorch { (&[1], vec![]) } else { (&[], vec![1]) };
        if tensor.shape.as_slice() != from {
            return tensor; // left for the shape check to report
        }
        let (name, dtype, shape) = (tensor.name.clone(), tensor.dtype, Shape::from(to));
        let target = shape.clone();
        bridge::map_data(tensor, name, dtype, shape, move |data| {
            let (bytes, _, dtype) = data.into_parts();
            TensorData::from_bytes(bytes, target.clone(), dtype)
        })
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// burn -> PyTorch layout: Linear weights transposed, scalars made 0-d.
fn to_pytorch_adapter(map: &KeyMap) -> impl ModuleAdapter + 'static {
    BurnToPyTorchAdapter.chain(ScalarAdapter { paths: map.scalars.clone(), to_pytorch: true })
}

/// PyTorch -> burn layout, any float dtype cast to float32.
fn from_pytorch_adapter(map: &KeyMap) -> impl ModuleAdapter + 'static {
    FloatCastAdapter::to(DType::F32).chain(PyTorchToBurnAdapter).chain(ScalarAdapter { paths: map.scalars.clone(), to_pytorch: false })
}

/// The model's parameters in PyTorch layout, keyed by burn path (unread: nothing is copied).
pub(crate) fn pytorch_layout<M: ModuleSnapshot>(model: &M, map: &KeyMap) -> Vec<PackTensor> {
    model.collect(None, Some(Box::new(to_pytorch_adapter(map))), true)
}

/// The PyTorch `state_dict()` of `model`, the zoo model `spec`, as it exports: every key with
/// its shape, in PyTorch's order. Checks that the module has exactly the parameters the key map
/// names ([`InteropError::Model`] otherwise). Reads no weights.
pub fn state_dict_shapes<M: ModuleSnapshot>(model: &M, spec: ModelSpec) -> Result<Vec<(String, Vec<usize>)>> {
    expected_shapes(model, &KeyMap::of(spec))
}

pub(crate) fn expected_shapes<M: ModuleSnapshot>(model: &M, map: &KeyMap) -> Result<Vec<(String, Vec<usize>)>> {
    let tensors = pytorch_layout(model, map);
    let shapes: BTreeMap<String, Vec<usize>> = tensors.into_iter().map(|t| (t.name, t.shape.as_slice().to_vec())).collect();
    let mapped: BTreeSet<&str> = map.pairs.iter().map(|p| p.burn.as_str()).collect();
    let unmapped: Vec<&str> = shapes.keys().map(String::as_str).filter(|k| !mapped.contains(k)).collect();
    let absent: Vec<&str> = mapped.iter().copied().filter(|k| !shapes.contains_key(*k)).collect();
    if !unmapped.is_empty() || !absent.is_empty() {
        return Err(InteropError::Model {
            model: map.model.clone(),
            message: format!(
                "the module is not this zoo model (parameters without a PyTorch name: [{}]; named parameters it lacks: [{}])",
                unmapped.join(", "),
                absent.join(", ")
            ),
        });
    }
    Ok(map.pairs.iter().map(|p| (p.torch.clone(), shapes[&p.burn].clone())).collect())
}

/// Refuses the first of `paths` that exists, unless `overwrite`.
pub(crate) fn refuse_existing(paths: &[&Path], overwrite: bool) -> Result<()> {
    if !overwrite {
        for p in paths {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(InteropError::Write { path: p.to_path_buf(), message: "the file exists (pass --force to replace it)".into() });
            }
        }
    }
    Ok(())
}

/// `^escaped$` for a literal path.
fn exact(path: &str) -> String {
    let mut s = String::with_capacity(path.len() + 8);
    s.push('^');
    for c in path.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('$');
    s
}

/// Writes `model` (the zoo model `spec`) to `path` as safetensors with PyTorch keys, float32,
/// and the sidecar `path.json` (see [`Sidecar`]). Atomic: a failed write leaves what was at
/// `path` untouched. An existing file is refused unless `opts.overwrite`.
pub fn export_safetensors<M: ModuleSnapshot>(model: &M, spec: ModelSpec, path: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let map = KeyMap::of(spec);
    let keys = expected_shapes(model, &map)?;
    let write_err = |message: String| InteropError::Write { path: path.to_path_buf(), message };
    let side = sidecar_path(path);
    refuse_existing(&[path, side.as_path()], opts.overwrite)?;
    let remapper = KeyRemapper::from_pattern_iter(map.pairs.iter().map(|p| (exact(&p.burn), p.torch.clone())))
        .map_err(|e| write_err(format!("key map: {e}")))?;
    let info = Sidecar::new(&spec, &map, &keys, opts)?;
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(to_pytorch_adapter(&map))
        .remap(remapper)
        .skip_enum_variants(true)
        .overwrite(opts.overwrite)
        .metadata("cilp_model", spec.name())
        .metadata("cilp_version", env!("CARGO_PKG_VERSION"));
    store.collect_from(model).map_err(|e| write_err(e.to_string()))?;
    info.write(&side, opts.overwrite)?;
    Ok(ExportReport { path: path.to_path_buf(), sidecar: side, info })
}

/// The format of a weights file, from its first bytes (see [`read_weights`]). A missing file,
/// a special file or one over [`MAX_WEIGHTS_BYTES`] is an error naming it.
pub fn weights_format(path: &Path) -> Result<WeightsFormat> {
    if let Err(e) = std::fs::metadata(path)
        && e.kind() == std::io::ErrorKind::NotFound
    {
        return Err(InteropError::NotFound { path: path.to_path_buf() });
    }
    let (file, _) = cilp_data::io::open_bounded(path, MAX_WEIGHTS_BYTES, WEIGHTS_WHAT)?;
    let mut head = Vec::with_capacity(9);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, 9), &mut head).map_err(|e| cilp_data::io::ReadError::Io {
        path: path.to_path_buf(),
        action: "cannot read file",
        source: e,
    })?;
    Ok(if head.len() == 9 && head[8] == b'{' { WeightsFormat::Safetensors } else { WeightsFormat::PyTorch })
}

/// The tensors of a weights file, keyed by their (PyTorch) names, and its format.
///
/// The format is recognised from the content: a safetensors file starts with an 8-byte header
/// length and a JSON header (`{`); anything else is read as a PyTorch file (zip or legacy
/// pickle) by [`cilp_models::pytorch::StateDict`], which refuses a pickle that would run code
/// in Python. Special files and files over [`MAX_WEIGHTS_BYTES`] are refused before reading.
pub fn read_weights(path: &Path) -> Result<(WeightsFormat, BTreeMap<String, PackTensor>)> {
    if weights_format(path)? == WeightsFormat::Safetensors {
        let bytes = cilp_data::io::read_bounded(path, MAX_WEIGHTS_BYTES, WEIGHTS_WHAT)?;
        let format_err = |message: String| InteropError::Format { path: path.to_path_buf(), format: WeightsFormat::Safetensors, message };
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        let tensors = store.get_all_tensors().map_err(|e| format_err(e.to_string()))?.clone();
        Ok((WeightsFormat::Safetensors, tensors))
    } else {
        let sd = cilp_models::pytorch::StateDict::open(path).map_err(|e| match e {
            cilp_models::ModelError::Read(r) => InteropError::Read(r),
            other => InteropError::Format { path: path.to_path_buf(), format: WeightsFormat::PyTorch, message: other.to_string() },
        })?;
        Ok((WeightsFormat::PyTorch, sd.into_tensors().into_iter().map(|t| (t.name.clone(), t)).collect()))
    }
}

/// Every way `found` differs from what the model needs (`expected`, PyTorch keys and shapes).
fn check_keys(path: &Path, model: &str, expected: &[(String, Vec<usize>)], found: &BTreeMap<String, PackTensor>) -> Result<()> {
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (key, shape) in expected {
        match found.get(key) {
            None => missing.push((key.clone(), shape.clone())),
            Some(t) => {
                let got = t.shape.as_slice();
                // A `[1]` logit scale saved by a tool that keeps it 1-d is accepted as well.
                let scalar_ok = shape.is_empty() && got == [1];
                if got != shape.as_slice() && !scalar_ok {
                    mismatched.push((key.clone(), format!("shape {got:?} in the file, the model needs {shape:?}")));
                } else if !t.dtype.is_float() {
                    mismatched.push((key.clone(), format!("dtype {:?}, expected a float tensor", t.dtype)));
                }
            }
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    let unexpected: Vec<String> = found.keys().filter(|k| !known.contains(k.as_str())).cloned().collect();
    if missing.is_empty() && unexpected.is_empty() && mismatched.is_empty() {
        return Ok(());
    }
    Err(InteropError::Mismatch { path: path.to_path_buf(), model: model.to_string(), missing, unexpected, mismatched })
}

/// Loads the weights in `path` (`.safetensors` or `.pt`, PyTorch names as [`KeyMap::of`] gives
/// them) into `model`, the zoo model `spec`, and returns it. The keys are checked first: every
/// missing, unexpected, mis-shaped or non-float key is named in one [`InteropError::Mismatch`]
/// and the model is not touched. Parameters keep their ids (an optimizer built later works as
/// with a fresh model) and their autodiff tracking.
pub fn load_weights<M: ModuleSnapshot>(model: M, spec: ModelSpec, path: &Path) -> Result<M> {
    let map = KeyMap::of(spec);
    let expected = expected_shapes(&model, &map)?;
    let (_, found) = read_weights(path)?;
    check_keys(path, &map.model, &expected, &found)?;
    let tensors: Vec<PackTensor> = found
        .into_values()
        .map(|mut t| {
            t.name = map.burn_of(&t.name).expect("checked above").to_string();
            t
        })
        .collect();
    let mut model = model;
    let result = model.apply(tensors, None, Some(Box::new(from_pytorch_adapter(&map))), true);
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(InteropError::Model {
            model: map.model.clone(),
            message: format!("loading {} failed after its keys were checked: {result}", path.display()),
        });
    }
    Ok(model)
}

/// A classifier read from a weights file ([`open_classifier`]).
#[derive(Debug)]
pub struct LoadedClassifier {
    /// The classifier, weights loaded.
    pub model: Classifier,
    /// Its zoo name.
    pub name: String,
    /// The file's sidecar, when it has one (the XYZA convention to feed it, ...).
    pub sidecar: Option<Sidecar>,
}

/// Loads the classifier in a weights file: the zoo model is `model`, else the one its sidecar
/// (`FILE.json`) names. A `model` that differs from the sidecar's is refused (an
/// `embedder-rgb` export has the keys of `embedder-lidar`, but not its input).
pub fn open_classifier(path: &Path, model: Option<&str>, device: &Device) -> Result<LoadedClassifier> {
    let sidecar = crate::sidecar::read_sidecar(path)?;
    let name = match (model, &sidecar) {
        (Some(m), Some(s)) if s.model != m => {
            return Err(InteropError::Model {
                model: m.to_string(),
                message: format!("{} holds a '{}' export (its sidecar says so), not this model", path.display(), s.model),
            });
        }
        (Some(m), _) => m.to_string(),
        (None, Some(s)) => s.model.clone(),
        (None, None) => {
            return Err(InteropError::Sidecar {
                path: sidecar_path(path),
                message: "not found, so the file's model is unknown; pass --model NAME".into(),
            });
        }
    };
    if sidecar.as_ref().is_some_and(|s| s.onnx.is_some()) {
        return Err(InteropError::Format {
            path: path.to_path_buf(),
            format: WeightsFormat::Safetensors,
            message: "this is an ONNX export (its sidecar says so); cilp reads weights from a .safetensors or .pt export \
                      (cilp export --format safetensors)"
                .into(),
        });
    }
    let model = load_classifier(&name, path, device)?;
    Ok(LoadedClassifier { model, name, sidecar })
}

/// Builds the zoo classifier `name` on `device` and loads `path` into it ([`load_weights`]).
pub fn load_classifier(name: &str, path: &Path, device: &Device) -> Result<Classifier> {
    let spec = ModelSpec::parse(name)?;
    let model = spec.build_classifier(device)?;
    load_weights(model, spec, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_patterns_escape_dots() {
        assert_eq!(exact("head.layers.0.weight"), r"^head\.layers\.0\.weight$");
        assert_eq!(exact("logit_scale"), "^logit_scale$");
    }
}
