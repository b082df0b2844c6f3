//! The linear model as ONNX: export (for training) and reading the weights back (for
//! explanations); and the context stage's head ([`export_head`]).
//!
//! The messages below declare the subset of the ONNX schema (`onnx.proto`, IR version 8) that the
//! graph uses, with the field numbers of the official schema; `prost` does the encoding.
//!
//! The graph: `features` (int64 `[batch, len]`, 0 = padding) → `Gather(weights)` → `[batch, len, C]`
//! → `ReduceSum(axis 1)` → `Add(bias)` → `Sigmoid` → `scores` (float `[batch, C]`).

use crate::{INPUT, OUTPUT};
use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(string, tag = "3")]
    producer_version: String,
    #[prost(string, tag = "6")]
    doc_string: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int64, tag = "3")]
    i: i64,
    /// AttributeType: INT = 2.
    #[prost(int32, tag = "20")]
    r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    /// TensorProto.DataType: FLOAT = 1, INT64 = 7.
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

const FLOAT: i32 = 1;
const INT64: i32 = 7;
const ATTR_INT: i32 = 2;

fn value_info(name: &str, elem_type: i32, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Ok(v) => Dimension {
                                dim_value: Some(*v),
                                dim_param: None,
                            },
                            Err(p) => Dimension {
                                dim_value: None,
                                dim_param: Some((*p).into()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("{op}_{output}"),
        op_type: op.into(),
        attribute,
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: ATTR_INT,
    }
}

/// A float initializer of shape `dims`.
fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|d| *d as i64).collect(),
        data_type: FLOAT,
        name: name.into(),
        raw_data: values.iter().flat_map(|f| f.to_le_bytes()).collect(),
    }
}

/// A graph as ONNX model bytes (IR version 8, opset 17), with `doc` as its doc string.
fn encode_model(graph: GraphProto, doc: &str) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        producer_name: "cordon-train".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
    }
    .encode_to_vec()
}

/// Encodes a linear model as ONNX: `weights` is row-major `[buckets, categories]`, row 0 all zeros.
pub fn export(weights: &[f32], bias: &[f32], buckets: usize, doc: &str) -> Vec<u8> {
    let categories = bias.len();
    assert_eq!(weights.len(), buckets * categories, "weights shape");
    let graph = GraphProto {
        name: "cordon_linear".into(),
        node: vec![
            node(
                "Gather",
                &["weights", INPUT],
                "gathered",
                vec![int_attr("axis", 0)],
            ),
            node(
                "ReduceSum",
                &["gathered", "sum_axes"],
                "logits_raw",
                vec![int_attr("keepdims", 0)],
            ),
            node("Add", &["logits_raw", "bias"], "logits", vec![]),
            node("Sigmoid", &["logits"], OUTPUT, vec![]),
        ],
        initializer: vec![
            float_tensor("weights", &[buckets, categories], weights),
            float_tensor("bias", &[categories], bias),
            TensorProto {
                dims: vec![1],
                data_type: INT64,
                name: "sum_axes".into(),
                raw_data: 1i64.to_le_bytes().to_vec(),
            },
        ],
        input: vec![value_info(INPUT, INT64, &[Err("batch"), Err("len")])],
        output: vec![value_info(
            OUTPUT,
            FLOAT,
            &[Err("batch"), Ok(categories as i64)],
        )],
    };
    encode_model(graph, doc)
}

/// Name of the head's embedding input: float `[batch, dims]`.
pub const HEAD_EMBEDDING: &str = "embedding";
/// Name of the head's fast-model input: the fast model's logits, float `[batch, categories]`.
pub const HEAD_FAST_LOGITS: &str = "fast_logits";

/// Encodes the context stage's head as ONNX: `[embedding, fast_logits]` (concatenated) →
/// `MatMul(weights)` → `Add(bias)` → `Sigmoid` → `scores` (float `[batch, categories]`).
/// `weights` is row-major `[dims + categories, categories]`.
pub fn export_head(weights: &[f32], bias: &[f32], dims: usize, doc: &str) -> Vec<u8> {
    let categories = bias.len();
    let inputs = dims + categories;
    assert_eq!(weights.len(), inputs * categories, "weights shape");
    let graph = GraphProto {
        name: "cordon_context_head".into(),
        node: vec![
            node(
                "Concat",
                &[HEAD_EMBEDDING, HEAD_FAST_LOGITS],
                "features",
                vec![int_attr("axis", 1)],
            ),
            node("MatMul", &["features", "weights"], "logits_raw", vec![]),
            node("Add", &["logits_raw", "bias"], "logits", vec![]),
            node("Sigmoid", &["logits"], OUTPUT, vec![]),
        ],
        initializer: vec![
            float_tensor("weights", &[inputs, categories], weights),
            float_tensor("bias", &[categories], bias),
        ],
        input: vec![
            value_info(HEAD_EMBEDDING, FLOAT, &[Err("batch"), Ok(dims as i64)]),
            value_info(
                HEAD_FAST_LOGITS,
                FLOAT,
                &[Err("batch"), Ok(categories as i64)],
            ),
        ],
        output: vec![value_info(
            OUTPUT,
            FLOAT,
            &[Err("batch"), Ok(categories as i64)],
        )],
    };
    encode_model(graph, doc)
}

/// The weight table and biases of a linear model read from its ONNX bytes.
#[derive(Debug, Clone)]
pub struct LinearWeights {
    /// Row-major `[buckets, categories]`.
    pub weights: Vec<f32>,
    /// One per category.
    pub bias: Vec<f32>,
}

/// Reads the `weights` and `bias` initializers of a model written by [`export`]; `None` when the
/// bytes are not such a model.
pub fn read_linear(bytes: &[u8]) -> Option<LinearWeights> {
    let model = ModelProto::decode(bytes).ok()?;
    let graph = model.graph?;
    let floats = |name: &str| -> Option<Vec<f32>> {
        let t = graph.initializer.iter().find(|t| t.name == name)?;
        if t.data_type != FLOAT || t.raw_data.len() % 4 != 0 {
            return None;
        }
        Some(
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    };
    Some(LinearWeights {
        weights: floats("weights")?,
        bias: floats("bias")?,
    })
}
