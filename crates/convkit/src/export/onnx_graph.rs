//! A small ONNX graph builder: constant tensors (initializers), nodes, and names that are
//! unique in the graph.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use super::onnx_proto::{
    AttributeProto, AttributeType, GraphProto, NodeProto, TensorProto, DATA_TYPE_FLOAT,
    DATA_TYPE_INT64,
};
use crate::error::{Error, Result};

/// A node's setting, before it becomes an [`AttributeProto`].
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// One integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// One float.
    Float(f32),
}

impl Attr {
    fn to_proto(&self, name: &str) -> AttributeProto {
        let base = AttributeProto {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        match self {
            Attr::Int(i) => AttributeProto {
                i: Some(*i),
                r#type: Some(AttributeType::Int as i32),
                ..base
            },
            Attr::Ints(ints) => AttributeProto {
                ints: ints.clone(),
                r#type: Some(AttributeType::Ints as i32),
                ..base
            },
            Attr::Float(f) => AttributeProto {
                f: Some(*f),
                r#type: Some(AttributeType::Float as i32),
                ..base
            },
        }
    }
}

/// Builds a [`GraphProto`] node by node. Value, node and initializer names come from
/// hints (a layer's name, an operator) made unique with a `_1`, `_2`, ... suffix, so any
/// hint is safe to pass.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// How many times each name was asked for.
    taken: HashMap<String, usize>,
    /// Values in the initializers.
    parameter_count: usize,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// A name not used yet in the graph, from `hint`; `reserve` the names the graph's
    /// inputs and outputs take first.
    pub fn unique(&mut self, hint: &str) -> String {
        let mut next = self.taken.get(hint).copied().unwrap_or(0);
        let name = loop {
            let candidate = match next {
                0 => hint.to_owned(),
                n => format!("{hint}_{n}"),
            };
            next += 1;
            if !self.taken.contains_key(&candidate) {
                break candidate;
            }
        };
        self.taken.insert(hint.to_owned(), next);
        self.taken.entry(name.clone()).or_insert(1);
        name
    }

    /// Takes `name` as it is (a graph input or output); fails if it is taken already.
    pub fn reserve(&mut self, name: &str) -> Result<()> {
        if self.taken.contains_key(name) {
            return Err(Error::InvalidConfig(format!(
                "onnx export: the name `{name}` is used twice"
            )));
        }
        self.taken.insert(name.to_owned(), 1);
        Ok(())
    }

    /// Adds a float32 constant of shape `dims` holding `values` (row-major); returns its
    /// name.
    pub fn initializer_f32(&mut self, hint: &str, dims: &[i64], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, values.len());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.parameter_count += values.len();
        self.push_initializer(hint, dims, DATA_TYPE_FLOAT, raw)
    }

    /// Adds an int64 constant of shape `dims` (operator arguments such as `Slice`'s
    /// starts); returns its name.
    pub fn initializer_i64(&mut self, hint: &str, dims: &[i64], values: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, values.len());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(hint, dims, DATA_TYPE_INT64, raw)
    }

    /// Adds `tensor` as a float32 constant of its own shape (converted to fp32, contiguous,
    /// on the CPU); returns its name.
    pub fn initializer_tensor(&mut self, hint: &str, tensor: &Tensor) -> Result<String> {
        let values = tensor_values(tensor)?;
        Ok(self.initializer_f32(hint, &tensor.size(), &values))
    }

    fn push_initializer(
        &mut self,
        hint: &str,
        dims: &[i64],
        data_type: i32,
        raw: Vec<u8>,
    ) -> String {
        let name = self.unique(hint);
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(data_type),
            name: Some(name.clone()),
            raw_data: Some(raw),
            ..Default::default()
        });
        name
    }

    /// Adds a node applying `op` to `inputs` with `attributes`, and returns the name of
    /// its one output; `hint` names the node (`<hint>/<op>`) and its output.
    pub fn node(
        &mut self,
        hint: &str,
        op: &str,
        inputs: &[&str],
        attributes: &[(&str, Attr)],
    ) -> String {
        let output = self.unique(&format!("{hint}/{op}_output"));
        self.node_into(hint, op, inputs, attributes, &output);
        output
    }

    /// As [`GraphBuilder::node`], writing to the value `output` (a reserved graph output).
    pub fn node_into(
        &mut self,
        hint: &str,
        op: &str,
        inputs: &[&str],
        attributes: &[(&str, Attr)],
        output: &str,
    ) {
        let name = self.unique(&format!("{hint}/{op}"));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.to_owned()],
            name: Some(name),
            op_type: Some(op.to_owned()),
            attribute: attributes
                .iter()
                .map(|(name, attr)| attr.to_proto(name))
                .collect(),
            ..Default::default()
        });
    }

    /// Number of nodes so far.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of float values in the initializers so far: the model's parameters (after
    /// any folding) and preprocessing constants.
    pub fn parameter_count(&self) -> usize {
        self.parameter_count
    }

    /// The graph, with `name` and no inputs or outputs yet.
    pub fn finish(self, name: &str) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: Some(name.to_owned()),
            initializer: self.initializers,
            ..Default::default()
        }
    }
}

/// The values of `tensor` as fp32, row-major, whatever its device, type and memory layout.
pub fn tensor_values(tensor: &Tensor) -> Result<Vec<f32>> {
    let cpu = tensor
        .detach()
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?;
    let mut values = vec![0f32; cpu.numel()];
    cpu.f_copy_data(&mut values, cpu.numel())?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_whatever_the_hints() {
        let mut g = GraphBuilder::new();
        g.reserve("image").unwrap();
        assert_eq!(g.unique("image"), "image_1");
        assert_eq!(g.unique("conv"), "conv");
        assert_eq!(g.unique("conv"), "conv_1");
        // a hint that collides with a suffixed name gets a suffix of its own
        assert_eq!(g.unique("conv_1"), "conv_1_1");
        assert_eq!(g.unique("conv"), "conv_2");
        assert!(g.reserve("conv").is_err());
    }

    #[test]
    fn nodes_and_initializers_land_in_the_graph() {
        let mut g = GraphBuilder::new();
        g.reserve("x").unwrap();
        let w = g.initializer_f32("w", &[2], &[1.0, -2.0]);
        let y = g.node("layer", "Mul", &["x", &w], &[("axis", Attr::Int(0))]);
        assert_eq!(y, "layer/Mul_output");
        assert_eq!((g.node_count(), g.parameter_count()), (1, 2));
        let graph = g.finish("g");
        assert_eq!(graph.node[0].input, ["x", "w"]);
        let attr = &graph.node[0].attribute[0];
        assert_eq!((attr.i, attr.r#type), (Some(0), Some(2)));
        let raw = graph.initializer[0].raw_data.as_ref().unwrap();
        assert_eq!(raw[4..], (-2.0f32).to_le_bytes());
    }

    #[test]
    fn tensor_values_are_row_major_even_for_channels_last() {
        let t = Tensor::arange(24, (Kind::Float, Device::Cpu)).view([1, 2, 3, 4]);
        let nhwc =
            crate::runtime::contiguous_in(&t, crate::runtime::MemoryFormat::ChannelsLast).unwrap();
        assert!(crate::runtime::is_contiguous_in(
            &nhwc,
            crate::runtime::MemoryFormat::ChannelsLast
        ));
        let values = tensor_values(&nhwc).unwrap();
        assert_eq!(values, (0..24).map(|v| v as f32).collect::<Vec<_>>());
    }
}
