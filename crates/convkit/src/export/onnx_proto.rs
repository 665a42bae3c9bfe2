//! The subset of `onnx.proto` (ONNX 1.23, proto2) that an exported convnet needs, as
//! hand-written `prost` messages.
//!
//! Every field number and type below is the one in onnx/onnx.proto; fields convkit never
//! writes are left out (protobuf readers skip nothing they are not given). `optional`
//! scalars are `Option`s because presence matters to ONNX's checker: an `INT` attribute
//! whose value is 0 must still carry its `i` field.

/// `TensorProto.DataType.FLOAT`.
pub const DATA_TYPE_FLOAT: i32 = 1;
/// `TensorProto.DataType.INT64`.
pub const DATA_TYPE_INT64: i32 = 7;

/// A model: the graph, the operator sets it uses, who made it, and free-form metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The IR version the file follows.
    #[prost(int64, optional, tag = "1")]
    pub ir_version: Option<i64>,
    /// The name of the tool that wrote the file.
    #[prost(string, optional, tag = "2")]
    pub producer_name: Option<String>,
    /// Its version.
    #[prost(string, optional, tag = "3")]
    pub producer_version: Option<String>,
    /// A reverse-DNS name for the model's namespace.
    #[prost(string, optional, tag = "4")]
    pub domain: Option<String>,
    /// The model's own version.
    #[prost(int64, optional, tag = "5")]
    pub model_version: Option<i64>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "6")]
    pub doc_string: Option<String>,
    /// The computation.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// The operator sets the graph uses, each with its version.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Named strings, read back by runtimes as the model's custom metadata.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// A key and its value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// The key.
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    /// Its value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// An operator set and its version (`domain` empty: the default `ai.onnx` set).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// The operator set's domain.
    #[prost(string, optional, tag = "1")]
    pub domain: Option<String>,
    /// Its version.
    #[prost(int64, optional, tag = "2")]
    pub version: Option<i64>,
}

/// A graph: nodes in topological order, its constant tensors, its inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// The nodes, each after the nodes it reads from.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// Named constant tensors: the weights.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "10")]
    pub doc_string: Option<String>,
    /// The values the caller provides.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// The values the graph returns.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Types and shapes of intermediate values (optional hints).
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// The names of the values it reads, in the operator's order.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// The names of the values it writes.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name, unique in the graph.
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    /// The operator, such as `Conv`.
    #[prost(string, optional, tag = "4")]
    pub op_type: Option<String>,
    /// The operator's settings.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "6")]
    pub doc_string: Option<String>,
    /// The operator set's domain (empty: `ai.onnx`).
    #[prost(string, optional, tag = "7")]
    pub domain: Option<String>,
}

/// The kind of value an [`AttributeProto`] holds (`AttributeProto.AttributeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AttributeType {
    /// Not set.
    Undefined = 0,
    /// One float, in `f`.
    Float = 1,
    /// One integer, in `i`.
    Int = 2,
    /// One string, in `s`.
    String = 3,
    /// One tensor, in `t`.
    Tensor = 4,
    /// A list of floats, in `floats`.
    Floats = 6,
    /// A list of integers, in `ints`.
    Ints = 7,
}

/// A named setting of a node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The setting's name, such as `strides`.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// A float value.
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    /// An integer value.
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// A string value (UTF-8).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    /// A tensor value.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// A list of floats.
    #[prost(float, repeated, packed = "false", tag = "7")]
    pub floats: Vec<f32>,
    /// A list of integers.
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "13")]
    pub doc_string: Option<String>,
    /// Which of the value fields is in use.
    #[prost(enumeration = "AttributeType", optional, tag = "20")]
    pub r#type: Option<i32>,
}

/// A tensor: its shape, element type and values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The shape (empty for a scalar).
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// The element type, a `TensorProto.DataType` ([`DATA_TYPE_FLOAT`], ...).
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    /// Its name: how nodes refer to it.
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
    /// The values, row-major, little-endian, packed as the element type stores them.
    #[prost(bytes = "vec", optional, tag = "9")]
    pub raw_data: Option<Vec<u8>>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "12")]
    pub doc_string: Option<String>,
}

/// A named value with its type: a graph's input or output.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// The value's name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "3")]
    pub doc_string: Option<String>,
}

/// A value's type; convkit writes tensor types only (`TypeProto.tensor_type`, field 1 of
/// the `value` oneof).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// The tensor type.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

/// `TypeProto.Tensor`: an element type and a shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// The element type, a `TensorProto.DataType`.
    #[prost(int32, optional, tag = "1")]
    pub elem_type: Option<i32>,
    /// The shape, each axis known or named.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// A shape: one entry per axis.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The axes, outermost first.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: an axis of a fixed size, or of a size named by a
/// parameter (`batch`) that the caller chooses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// The size, known or named (the `value` oneof).
    #[prost(oneof = "DimensionValue", tags = "1, 2")]
    pub value: Option<DimensionValue>,
}

/// The `value` oneof of [`Dimension`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum DimensionValue {
    /// A fixed size.
    #[prost(int64, tag = "1")]
    DimValue(i64),
    /// A size the caller chooses, named.
    #[prost(string, tag = "2")]
    DimParam(String),
}

impl Dimension {
    /// An axis of `size` values.
    pub fn fixed(size: i64) -> Dimension {
        Dimension {
            value: Some(DimensionValue::DimValue(size)),
        }
    }

    /// An axis whose size is the parameter `name`.
    pub fn named(name: &str) -> Dimension {
        Dimension {
            value: Some(DimensionValue::DimParam(name.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Bytes worked out by hand from onnx.proto's field numbers: a tag byte is
    /// `field << 3 | wire type` (0 varint, 2 length-delimited, 5 fixed 32 bits).
    #[test]
    fn fields_encode_with_onnx_numbers() {
        let opset = OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        };
        assert_eq!(opset.encode_to_vec(), [0x0a, 0x00, 0x10, 17]);
        // an INT attribute of 0 keeps its `i` (field 3) and its type (field 20: 0xa0 0x01)
        let attr = AttributeProto {
            name: Some("a".into()),
            i: Some(0),
            r#type: Some(AttributeType::Int as i32),
            ..Default::default()
        };
        assert_eq!(
            attr.encode_to_vec(),
            [0x0a, 1, b'a', 0x18, 0, 0xa0, 0x01, 2]
        );
        // dims (field 1) unpacked as onnx writes them, raw_data is field 9
        let tensor = TensorProto {
            dims: vec![2, 1],
            data_type: Some(DATA_TYPE_FLOAT),
            raw_data: Some(vec![0; 8]),
            ..Default::default()
        };
        let bytes = tensor.encode_to_vec();
        assert_eq!(bytes[..6], [0x08, 2, 0x08, 1, 0x10, 1]);
        assert_eq!(bytes[6..8], [0x4a, 8]);
        let dims = TensorShapeProto {
            dim: vec![Dimension::named("b"), Dimension::fixed(0)],
        };
        assert_eq!(
            dims.encode_to_vec(),
            [0x0a, 3, 0x12, 1, b'b', 0x0a, 2, 0x08, 0]
        );
    }

    #[test]
    fn a_model_reads_back() {
        let model = ModelProto {
            ir_version: Some(8),
            producer_name: Some("convkit".into()),
            metadata_props: vec![StringStringEntryProto {
                key: Some("k".into()),
                value: Some("v".into()),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = model.encode_to_vec();
        // ir_version is field 1, varint
        assert_eq!(bytes[..2], [0x08, 8]);
        assert_eq!(ModelProto::decode(bytes.as_slice()).unwrap(), model);
    }
}
