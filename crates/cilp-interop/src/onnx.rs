//! ONNX export of the zoo classifiers: the graph is written by hand (there is no burn ONNX
//! exporter; `burn-onnx` only imports) with prost messages for the subset of `onnx.proto` it
//! needs ([`proto`]), opset [`ONNX_OPSET`], IR version [`ONNX_IR_VERSION`].
//!
//! The graph mirrors each [`Classifier`] variant's burn forward, module by module, reading the
//! layer settings from the modules themselves (kernel, stride, padding, dilation, groups of every
//! convolution; kernel, stride, padding, dilation and ceil mode of every pool):
//!
//! | burn | ONNX |
//! |---|---|
//! | `Conv2d` (`Explicit(top, left, bottom, right)` padding) | `Conv` (`pads = [top, left, bottom, right]`) |
//! | `Relu` | `Relu` |
//! | `MaxPool2d` | `MaxPool` |
//! | `flatten(1, 3)` on NCHW | `Flatten(axis = 1)` (the same channel-major order as PyTorch's `view(B, -1)`) |
//! | `Linear` (burn weight `[in, out]`) | `Gemm(transB = 1)` with the PyTorch-layout `[out, in]` weight |
//! | `Tensor::cat(.., 1)`, `+`, `*` | `Concat(axis = 1)`, `Add`, `Mul` |
//! | `l2_normalize` (NVIDIA's CILP image encoder in `rgb-to-lidar`) | `ReduceL2(axes = [1], keepdims = 1)`, `Max(., 1e-12)`, `Div` |
//!
//! The weights are initializers named by their PyTorch `state_dict()` keys (the same names, layout
//! and order as the `.safetensors` export). Inputs are named by cilp's input kinds (`rgb`, `xyza`,
//! `depth`), float32 `[N, C, 64, 64]` with a symbolic batch axis `N`; the output is `logits`,
//! `[N, num_outputs]`. The sidecar (`FILE.onnx.json`) is the safetensors export's, plus `onnx`.
//!
//! Every [`Classifier`] variant is covered (the match has no fallback, so a new variant does not
//! compile until it has a graph). Settings the graph cannot express (`Same` convolution padding)
//! and models that are not classifiers (`cilp`, `projector`, ...) are refused by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::store::bridge;
use burn::store::burn_pack::Tensor as PackTensor;
use cilp_models::nvidia::NvidiaEmbedder;
use cilp_models::{Classifier, ConvBlock, ConvTrunk, Embedder, FusionMode, InputKind, Mlp, ModelSpec, ModelTask};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::keymap::KeyMap;
use crate::sidecar::{Sidecar, sidecar_path};
use crate::weights::{ExportOptions, ExportReport, expected_shapes, pytorch_layout, refuse_existing};
use crate::{InteropError, Result};

pub mod proto;

use proto::tensor_shape_proto::{Dimension, dimension};
use proto::{
    ATTR_FLOAT, ATTR_INT, ATTR_INTS, AttributeProto, DATA_TYPE_FLOAT, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};

/// The ONNX operator set the graph uses.
pub const ONNX_OPSET: i64 = 17;
/// The ONNX IR version written (8: ONNX 1.10+, the IR of opset 17).
pub const ONNX_IR_VERSION: i64 = 8;
/// Name of the graph output.
pub const ONNX_OUTPUT: &str = "logits";
/// Name of the symbolic batch dimension of every input and of the output.
pub const ONNX_BATCH_AXIS: &str = "N";
/// The floor of the L2 norm in `l2_normalize` (burn's `clamp_min(1e-12)`).
const L2_EPS: f32 = 1e-12;

/// The `onnx` member of an ONNX export's sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnnxInfo {
    /// [`ONNX_OPSET`].
    pub opset: i64,
    /// [`ONNX_IR_VERSION`].
    pub ir_version: i64,
    /// The graph inputs, in order (the sidecar's `inputs` describe them).
    pub inputs: Vec<String>,
    /// The graph output ([`ONNX_OUTPUT`]), `[N, outputs]`.
    pub output: String,
    /// The symbolic batch dimension ([`ONNX_BATCH_AXIS`]).
    pub batch_axis: String,
}

/// Writes the classifier `model` (the zoo model `spec`) to `path` as an ONNX graph with its
/// weights, and the sidecar `path.json`. Atomic like [`crate::export_safetensors`]; an existing
/// file is refused unless `opts.overwrite`.
pub fn export_onnx(model: &Classifier, spec: ModelSpec, path: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let (graph, map, keys) = onnx_model(model, spec)?;
    let side = sidecar_path(path);
    refuse_existing(&[path, side.as_path()], opts.overwrite)?;
    let mut info = Sidecar::new(&spec, &map, &keys, opts)?;
    info.onnx = Some(OnnxInfo {
        opset: ONNX_OPSET,
        ir_version: ONNX_IR_VERSION,
        inputs: model.inputs().iter().map(|k| k.name().to_string()).collect(),
        output: ONNX_OUTPUT.into(),
        batch_axis: ONNX_BATCH_AXIS.into(),
    });
    write_atomic(path, &graph.encode_to_vec(), opts.overwrite)?;
    info.write(&side, opts.overwrite)?;
    Ok(ExportReport { path: path.to_path_buf(), sidecar: side, info })
}

/// PyTorch state-dict keys with their shapes, in PyTorch's order.
type StateDictShapes = Vec<(String, Vec<usize>)>;

/// The ONNX model of a classifier, with its key map and PyTorch state-dict shapes.
fn onnx_model(model: &Classifier, spec: ModelSpec) -> Result<(ModelProto, KeyMap, StateDictShapes)> {
    if spec.task() != ModelTask::Classification {
        return Err(InteropError::Model {
            model: spec.name(),
            message: format!(
                "ONNX export covers the zoo classifiers; '{}' is a {} model (export it as safetensors)",
                spec.name(),
                match spec.task() {
                    ModelTask::Contrastive => "contrastive",
                    ModelTask::Regression => "regression",
                    ModelTask::Classification => "classification",
                }
            ),
        });
    }
    let map = KeyMap::of(spec);
    let keys = expected_shapes(model, &map)?;
    let weights = pytorch_layout(model, &map).into_iter().map(|t| (t.name.clone(), t)).collect();
    let inputs = model.inputs();
    let mut g = Builder { map: &map, weights, nodes: Vec::new(), initializers: Vec::new(), names: BTreeSet::new() };
    for kind in &inputs {
        g.names.insert(kind.name().to_string());
    }
    let logits = g.classifier(model)?;
    g.finish(logits);
    if !g.weights.is_empty() {
        let left: Vec<&str> = g.weights.keys().map(String::as_str).collect();
        return Err(InteropError::Model {
            model: spec.name(),
            message: format!("the ONNX graph does not use these parameters (cilp's forward does): {}", left.join(", ")),
        });
    }
    let graph = GraphProto {
        node: g.nodes,
        name: spec.name(),
        initializer: g.initializers,
        doc_string: spec.description(),
        input: inputs.iter().map(|k| value_info(k.name(), &k.sample_shape())).collect(),
        output: vec![value_info(ONNX_OUTPUT, &[spec.outputs()])],
    };
    let proto = ModelProto {
        ir_version: ONNX_IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: ONNX_OPSET }],
        producer_name: "cilp".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: format!("cilp zoo model '{}': {}", spec.name(), spec.description()),
        graph: Some(graph),
        metadata_props: vec![StringStringEntryProto { key: "cilp_model".into(), value: spec.name() }],
    };
    Ok((proto, map, keys))
}

/// A float32 value `[N, dims...]`.
fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut dim = vec![Dimension { value: Some(dimension::Value::DimParam(ONNX_BATCH_AXIS.into())), denotation: String::new() }];
    dim.extend(dims.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d as i64)), denotation: String::new() }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DATA_TYPE_FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: ATTR_INTS, ints: values.iter().map(|&v| v as i64).collect(), ..Default::default() }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: ATTR_INT, i: value, ..Default::default() }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: ATTR_FLOAT, f: value, ..Default::default() }
}

/// Builds the graph: nodes in forward order, initializers as they are first used.
struct Builder<'a> {
    map: &'a KeyMap,
    /// Parameters not yet used, PyTorch layout, keyed by burn path.
    weights: BTreeMap<String, PackTensor>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Every value name in use.
    names: BTreeSet<String>,
}

impl Builder<'_> {
    fn err(&self, message: String) -> InteropError {
        InteropError::Model { model: self.map.model.clone(), message }
    }

    /// `base`, or `base.1`, `base.2`, ... if taken.
    fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 0;
        while self.names.contains(&name) {
            i += 1;
            name = format!("{base}.{i}");
        }
        self.names.insert(name.clone());
        name
    }

    /// One node with one output, named `name` (made unique); returns the output.
    fn node(&mut self, op: &str, name: &str, input: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        let out = self.unique(name);
        self.nodes.push(NodeProto {
            input,
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute,
            domain: String::new(),
        });
        out
    }

    /// The parameter at burn path `burn` as an initializer named by its PyTorch key.
    fn param(&mut self, burn: &str) -> Result<String> {
        let torch = self.map.torch_of(burn).ok_or_else(|| self.err(format!("no PyTorch name for the parameter {burn}")))?.to_string();
        let t = self.weights.remove(burn).ok_or_else(|| self.err(format!("the module has no parameter {burn}")))?;
        let dims = t.shape.as_slice().iter().map(|&d| d as i64).collect();
        let data = bridge::into_data(t).map_err(|e| self.err(format!("reading {burn}: {e}")))?;
        let values = data.convert::<f32>().try_into_vec::<f32>().map_err(|e| self.err(format!("reading {burn}: {e:?}")))?;
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.names.insert(torch.clone());
        self.initializers.push(TensorProto { dims, data_type: DATA_TYPE_FLOAT, name: torch.clone(), doc_string: String::new(), raw_data });
        Ok(torch)
    }

    /// A float32 constant initializer of shape `[]`.
    fn scalar(&mut self, name: &str, value: f32) -> String {
        let name = self.unique(name);
        self.initializers.push(TensorProto {
            dims: vec![],
            data_type: DATA_TYPE_FLOAT,
            name: name.clone(),
            doc_string: String::new(),
            raw_data: value.to_le_bytes().to_vec(),
        });
        name
    }

    /// The PyTorch module name of the layer at burn path `path` (`rgb_Embedder.conv1`).
    fn torch_module(&self, path: &str) -> Result<String> {
        let key = self.map.torch_of(&format!("{path}.weight")).ok_or_else(|| self.err(format!("no PyTorch name for {path}.weight")))?;
        Ok(key.strip_suffix(".weight").unwrap_or(key).to_string())
    }

    fn pads(&self, padding: &PaddingConfig2d, what: &str) -> Result<[usize; 4]> {
        match *padding {
            // burn: (top, left, bottom, right); ONNX: [x1_begin, x2_begin, x1_end, x2_end].
            PaddingConfig2d::Explicit(top, left, bottom, right) => Ok([top, left, bottom, right]),
            PaddingConfig2d::Valid => Ok([0; 4]),
            PaddingConfig2d::Same => Err(self.err(format!("{what} has `Same` padding, which this ONNX export does not write"))),
        }
    }

    fn conv(&mut self, conv: &Conv2d, path: &str, x: String) -> Result<String> {
        let pads = self.pads(&conv.padding, path)?;
        let name = self.torch_module(path)?;
        let mut input = vec![x, self.param(&format!("{path}.weight"))?];
        if conv.bias.is_some() {
            input.push(self.param(&format!("{path}.bias"))?);
        }
        let attrs = vec![
            ints("kernel_shape", &conv.kernel_size),
            ints("strides", &conv.stride),
            ints("pads", &pads),
            ints("dilations", &conv.dilation),
            int("group", conv.groups as i64),
        ];
        Ok(self.node("Conv", &name, input, attrs))
    }

    fn maxpool(&mut self, pool: &MaxPool2d, name: &str, x: String) -> Result<String> {
        let pads = self.pads(&pool.padding, name)?;
        let attrs = vec![
            ints("kernel_shape", &pool.kernel_size),
            ints("strides", &pool.stride),
            ints("pads", &pads),
            ints("dilations", &pool.dilation),
            int("ceil_mode", i64::from(pool.ceil_mode)),
        ];
        Ok(self.node("MaxPool", name, vec![x], attrs))
    }

    fn relu(&mut self, name: &str, x: String) -> String {
        self.node("Relu", name, vec![x], vec![])
    }

    /// [`ConvBlock::forward`]: conv -> ReLU -> [MaxPool] -> [strided conv].
    fn block(&mut self, b: &ConvBlock, path: &str, x: String) -> Result<String> {
        let conv_path = format!("{path}.conv");
        let name = self.torch_module(&conv_path)?;
        let x = self.conv(&b.conv, &conv_path, x)?;
        let mut x = self.relu(&format!("{name}.relu"), x);
        if let Some(pool) = &b.pool {
            x = self.maxpool(pool, &format!("{name}.pool"), x)?;
        }
        if let Some(down) = &b.down_conv {
            x = self.conv(down, &format!("{path}.down_conv"), x)?;
        }
        Ok(x)
    }

    fn trunk(&mut self, t: &ConvTrunk, path: &str, x: String) -> Result<String> {
        let mut x = x;
        for (i, b) in t.blocks.iter().enumerate() {
            x = self.block(b, &format!("{path}.blocks.{i}"), x)?;
        }
        Ok(x)
    }

    /// `flatten(1, 3)` of NCHW: `[N, C * H * W]`, channel-major.
    fn flatten(&mut self, path: &str, x: String) -> String {
        self.node("Flatten", &format!("{path}.flatten"), vec![x], vec![int("axis", 1)])
    }

    /// `Linear`: `x @ W + b` with burn's `W [in, out]` = `x @ W_pt^T + b` (`Gemm`, `transB = 1`,
    /// the initializer in PyTorch's `[out, in]` layout).
    fn linear(&mut self, layer: &Linear, path: &str, x: String) -> Result<String> {
        let name = self.torch_module(path)?;
        let mut input = vec![x, self.param(&format!("{path}.weight"))?];
        if layer.bias.is_some() {
            input.push(self.param(&format!("{path}.bias"))?);
        }
        let attrs = vec![float("alpha", 1.0), float("beta", 1.0), int("transA", 0), int("transB", 1)];
        Ok(self.node("Gemm", &name, input, attrs))
    }

    /// [`Mlp::forward`]: linear layers with ReLU between them, none after the last.
    fn mlp(&mut self, m: &Mlp, path: &str, x: String) -> Result<String> {
        let mut x = x;
        let n = m.layers.len();
        for (i, layer) in m.layers.iter().enumerate() {
            let layer_path = format!("{path}.layers.{i}");
            let name = self.torch_module(&layer_path)?;
            x = self.linear(layer, &layer_path, x)?;
            if i + 1 < n {
                x = self.relu(&format!("{name}.relu"), x);
            }
        }
        Ok(x)
    }

    /// The seed [`Embedder`]: trunk, flatten, head.
    fn embedder(&mut self, e: &Embedder, path: &str, x: String) -> Result<String> {
        let x = self.trunk(&e.trunk, &format!("{path}.trunk"), x)?;
        let x = self.flatten(path, x);
        self.mlp(&e.head, &format!("{path}.head"), x)
    }

    /// NVIDIA's CILP embedder: trunk, flatten, head, L2-normalised rows.
    fn nvidia_embedder(&mut self, e: &NvidiaEmbedder, path: &str, x: String) -> Result<String> {
        let x = self.trunk(&e.trunk, &format!("{path}.trunk"), x)?;
        let x = self.flatten(path, x);
        let x = self.mlp(&e.head, &format!("{path}.head"), x)?;
        // x / max(||x||_2, 1e-12) per row, as cilp_models::loss::l2_normalize.
        let norm = self.node("ReduceL2", &format!("{path}.l2_norm"), vec![x.clone()], vec![ints("axes", &[1]), int("keepdims", 1)]);
        let eps = self.scalar(&format!("{path}.l2_eps"), L2_EPS);
        let norm = self.node("Max", &format!("{path}.l2_norm_clamped"), vec![norm, eps], vec![]);
        Ok(self.node("Div", &format!("{path}.l2_normalized"), vec![x, norm], vec![]))
    }

    fn cat(&mut self, name: &str, a: String, b: String) -> String {
        self.node("Concat", name, vec![a, b], vec![int("axis", 1)])
    }

    /// [`Classifier::try_forward`], variant by variant.
    fn classifier(&mut self, model: &Classifier) -> Result<String> {
        let input = |k: InputKind| k.name().to_string();
        Ok(match model {
            Classifier::LateFusion(m) => {
                let a = self.embedder(&m.rgb, "rgb", input(InputKind::Rgb))?;
                let b = self.embedder(&m.xyza, "xyza", input(InputKind::Xyza))?;
                let x = self.cat("fusion.concat", a, b);
                self.mlp(&m.head, "head", x)?
            }
            Classifier::Intermediate(m) => {
                let a = self.trunk(&m.rgb, "rgb", input(InputKind::Rgb))?;
                let b = self.trunk(&m.xyza, "xyza", input(InputKind::Xyza))?;
                let x = match m.mode {
                    FusionMode::Concat => self.cat("fusion.concat", a, b),
                    FusionMode::Add => self.node("Add", "fusion.add", vec![a, b], vec![]),
                    FusionMode::Hadamard => self.node("Mul", "fusion.multiply", vec![a, b], vec![]),
                };
                let x = self.flatten("fusion", x);
                self.mlp(&m.head, "head", x)?
            }
            Classifier::Early(m) => {
                let x = self.cat("stack.concat", input(InputKind::Rgb), input(InputKind::Xyza));
                self.embedder(&m.net, "net", x)?
            }
            Classifier::Single(m) => self.embedder(&m.net, "net", input(m.input))?,
            Classifier::Lidar(m) => {
                let x = self.trunk(&m.embedder, "embedder", input(InputKind::Depth))?;
                let x = self.flatten("embedder", x);
                self.mlp(&m.classifier.mlp, "classifier.mlp", x)?
            }
            Classifier::RgbToLidar(m) => {
                let x = self.nvidia_embedder(&m.image, "image", input(InputKind::Rgb))?;
                let x = self.mlp(&m.projector.mlp, "projector.mlp", x)?;
                self.mlp(&m.head.mlp, "head.mlp", x)?
            }
            Classifier::SeedRgbToLidar(m) => {
                let x = self.embedder(&m.image, "image", input(InputKind::Rgb))?;
                let x = self.mlp(&m.projector.mlp, "projector.mlp", x)?;
                self.linear(&m.fc3, "fc3", x)?
            }
        })
    }

    /// Names the final value [`ONNX_OUTPUT`].
    fn finish(&mut self, out: String) {
        match self.nodes.last_mut() {
            Some(last) if last.output == [out.clone()] => last.output = vec![ONNX_OUTPUT.into()],
            _ => {
                self.nodes.push(NodeProto {
                    input: vec![out],
                    output: vec![ONNX_OUTPUT.into()],
                    name: ONNX_OUTPUT.into(),
                    op_type: "Identity".into(),
                    ..Default::default()
                });
            }
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    let err = |message: String| InteropError::Write { path: path.to_path_buf(), message };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| err(e.to_string()))?;
    if !overwrite && std::fs::symlink_metadata(path).is_ok() {
        let _ = std::fs::remove_file(&tmp);
        return Err(err("the file exists (pass --force to replace it)".into()));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    fn graph(name: &str) -> GraphProto {
        let device = Device::flex();
        let spec = ModelSpec::parse(name).unwrap();
        let model = spec.build_classifier(&device).unwrap();
        onnx_model(&model, spec).unwrap().0.graph.unwrap()
    }

    fn ops(g: &GraphProto) -> Vec<&str> {
        g.node.iter().map(|n| n.op_type.as_str()).collect()
    }

    #[test]
    fn late_fusion_graph_follows_the_forward() {
        let g = graph("late-fusion");
        let embedder = [
            "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Relu",
            "Gemm",
        ];
        let mut want: Vec<&str> = embedder.iter().chain(embedder.iter()).copied().collect();
        want.extend(["Concat", "Gemm", "Relu", "Gemm"]);
        assert_eq!(ops(&g), want);
        assert_eq!(g.node.last().unwrap().output, ["logits"]);
        let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names[0], "rgb_Embedder.conv1.weight");
        assert_eq!(g.initializer[6].dims, [1000, 6400], "PyTorch layout: {}", g.initializer[6].name);
        assert_eq!(g.initializer.len(), KeyMap::of(ModelSpec::parse("late-fusion").unwrap()).pairs.len());
    }

    #[test]
    fn strided_variants_have_their_own_convolutions() {
        let strided = graph("intermediate-add-strided");
        assert_eq!(ops(&strided).iter().filter(|o| **o == "Conv").count(), 12);
        assert!(!ops(&strided).contains(&"MaxPool"));
        assert!(ops(&strided).contains(&"Add"));
        let strided_conv = graph("early-fusion-strided-conv");
        let first = &strided_conv.node[1];
        assert_eq!(first.op_type, "Conv");
        assert_eq!(first.attribute.iter().find(|a| a.name == "strides").unwrap().ints, [2, 2]);
    }

    #[test]
    fn non_classifiers_are_refused_by_name() {
        let device = Device::flex();
        let model = ModelSpec::parse("late-fusion").unwrap().build_classifier(&device).unwrap();
        let err = onnx_model(&model, ModelSpec::parse("cilp").unwrap()).unwrap_err().to_string();
        assert!(err.contains("'cilp' is a contrastive model"), "{err}");
        // A module that is not the named model.
        let err = onnx_model(&model, ModelSpec::parse("early-fusion").unwrap()).unwrap_err().to_string();
        assert!(err.contains("not this zoo model"), "{err}");
    }

    #[test]
    fn the_file_decodes_with_opset_17_and_a_symbolic_batch() {
        let device = Device::flex();
        let spec = ModelSpec::parse("nvidia-lidar-classifier").unwrap();
        let model = spec.build_classifier(&device).unwrap();
        let bytes = onnx_model(&model, spec).unwrap().0.encode_to_vec();
        let back = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!((back.ir_version, back.opset_import[0].version), (8, 17));
        let g = back.graph.unwrap();
        assert_eq!(g.input[0].name, "depth");
        let Some(type_proto::Value::TensorType(t)) = &g.input[0].r#type.as_ref().unwrap().value else { panic!() };
        let dims: Vec<_> = t.shape.as_ref().unwrap().dim.iter().map(|d| d.value.clone().unwrap()).collect();
        assert_eq!(
            dims,
            [
                dimension::Value::DimParam("N".into()),
                dimension::Value::DimValue(1),
                dimension::Value::DimValue(64),
                dimension::Value::DimValue(64)
            ]
        );
        assert_eq!(g.output[0].name, "logits");
    }
}
