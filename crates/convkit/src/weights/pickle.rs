//! A pickle machine for PyTorch checkpoints that runs no pickle code.
//!
//! It interprets only the opcodes a state dict needs: Python's plain values, dicts, lists and
//! tuples, memo references, persistent ids (torch's storages), and REDUCE of a whitelist of
//! globals (`OrderedDict`, `_rebuild_tensor_v2`, `_rebuild_parameter`, the storage types).
//! Any other global is refused by name before anything is called. What it builds is a
//! description of tensors ([`TensorRef`]); `pth.rs` reads their bytes from the container.

use std::collections::HashMap;
use std::rc::Rc;

use tch::Kind;

/// A value on the pickle machine's stack. Strings and tuples are shared, so a BINGET repeated
/// many times costs nothing; dicts and lists live in the [`Unpickler`], by index, so one that
/// is filled after being memoised is seen filled through every reference.
#[derive(Clone, Debug)]
pub(super) enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float, // its value is never needed
    Str(Rc<str>),
    /// The items, and how deeply tuples nest in them.
    Tuple(Rc<[Value]>, u8),
    List(usize),
    Dict(usize),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

/// The only Python callables and types a checkpoint may name.
#[derive(Clone, Copy, Debug)]
pub(super) enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(Kind),
}

/// A storage as a persistent id names it: `numel` elements of `kind`, from element `offset`
/// (legacy storage views only) of the storage saved under `key`.
#[derive(Debug)]
pub(super) struct StorageRef {
    pub(super) key: String,
    pub(super) kind: Kind,
    pub(super) offset: i64,
    pub(super) numel: i64,
}

/// A tensor as `_rebuild_tensor_v2` describes it, built once its storage has been read.
#[derive(Debug)]
pub(super) struct TensorRef {
    pub(super) storage: Rc<StorageRef>,
    pub(super) offset: i64,
    pub(super) size: Vec<i64>,
    pub(super) stride: Vec<i64>,
}

fn resolve(module: &str, name: &str) -> Result<Global, String> {
    let kind = match (module, name) {
        ("collections", "OrderedDict") => return Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => return Ok(Global::RebuildTensor),
        ("torch._utils", "_rebuild_parameter") => return Ok(Global::RebuildParameter),
        ("torch", "FloatStorage") => Kind::Float,
        ("torch", "DoubleStorage") => Kind::Double,
        ("torch", "HalfStorage") => Kind::Half,
        ("torch", "BFloat16Storage") => Kind::BFloat16,
        ("torch", "LongStorage") => Kind::Int64,
        ("torch", "IntStorage") => Kind::Int,
        ("torch", "ShortStorage") => Kind::Int16,
        ("torch", "CharStorage") => Kind::Int8,
        ("torch", "ByteStorage") => Kind::Uint8,
        ("torch", "BoolStorage") => Kind::Bool,
        _ => {
            return Err(format!(
                "the pickle asks for `{module}.{name}`; a checkpoint may only hold tensors \
                 (refused, nothing was run)"
            ))
        }
    };
    Ok(Global::Storage(kind))
}

pub(super) fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let bytes = (pos.checked_add(n).and_then(|end| data.get(*pos..end)))
        .ok_or_else(|| format!("the file ends early (at byte {pos}, {n} more wanted)"))?;
    *pos += n;
    Ok(bytes)
}

/// An unsigned little-endian number of up to 8 bytes.
pub(super) fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0, |n, &b| n << 8 | u64::from(b))
}

/// A value for an error message, cut short: it comes from a file that may be hostile.
fn short(v: &Value) -> String {
    let text = match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Tensor(_) => "a tensor".into(),
        Value::Dict(_) => "a dict".into(),
        Value::List(_) => "a list".into(),
        v => format!("{v:?}"),
    };
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => i64::try_from(*i).map_err(|_| format!("integer {i} out of range")),
        v => Err(format!("expected an integer, found {}", short(v))),
    }
}

fn ints(v: &Value) -> Result<Vec<i64>, String> {
    match v {
        Value::Tuple(items, _) => items.iter().map(int).collect(),
        v => Err(format!("expected a tuple of integers, found {}", short(v))),
    }
}

/// The heap shared by the pickles of one file, and the storages their persistent ids named.
#[derive(Default)]
pub(super) struct Unpickler {
    pub(super) lists: Vec<Vec<Value>>,
    dicts: Vec<Vec<(Value, Value)>>,
    pub(super) storages: HashMap<String, (Kind, i64)>,
}

impl Unpickler {
    /// Runs one pickle from `data[*pos..]` up to its STOP, leaving `pos` after it.
    pub(super) fn load(&mut self, data: &[u8], pos: &mut usize) -> Result<Value, String> {
        let (mut stack, mut marks, mut memo) = (Vec::new(), Vec::new(), HashMap::new());
        loop {
            let at = *pos;
            let op = take(data, pos, 1)?[0];
            let malformed = || format!("a malformed pickle (opcode 0x{op:02x} at byte {at})");
            let mut arg = |n| take(data, pos, n);
            match op {
                0x80 | 0x95 => _ = arg(if op == 0x80 { 1 } else { 8 })?, // PROTO, FRAME: hints
                b'.' => return stack.pop().ok_or_else(malformed),
                b'(' => marks.push(stack.len()),
                b'N' => stack.push(Value::None),
                0x88 | 0x89 => stack.push(Value::Bool(op == 0x88)),
                b'G' => stack.push(arg(8).map(|_| Value::Float)?),
                b'K' => stack.push(Value::Int(le(arg(1)?).into())),
                b'M' => stack.push(Value::Int(le(arg(2)?).into())),
                b'J' => stack.push(Value::Int(le(arg(4)?) as u32 as i32 as i128)),
                0x8a => {
                    // LONG1: little-endian two's complement, as wide as it needs (10 bytes for
                    // the legacy magic number).
                    let n = arg(1)?[0].into();
                    let bytes = arg(n)?;
                    let sign = bytes
                        .last()
                        .map_or(0, |&b| if b >= 0x80 { 0xff } else { 0 });
                    let mut wide = [sign; 16];
                    wide.get_mut(..bytes.len())
                        .ok_or_else(malformed)?
                        .copy_from_slice(bytes);
                    stack.push(Value::Int(i128::from_le_bytes(wide)));
                }
                b'X' | 0x8c => {
                    let n = le(arg(if op == b'X' { 4 } else { 1 })?) as usize;
                    let text = std::str::from_utf8(arg(n)?).map_err(|_| malformed())?;
                    stack.push(Value::Str(text.into()));
                }
                b'q' | b'r' | 0x94 => {
                    let index = match op {
                        0x94 => memo.len() as u64,
                        _ => le(arg(if op == b'q' { 1 } else { 4 })?),
                    };
                    memo.insert(index, stack.last().ok_or_else(malformed)?.clone());
                }
                b'h' | b'j' => {
                    let index = le(arg(if op == b'h' { 1 } else { 4 })?);
                    stack.push(memo.get(&index).ok_or_else(malformed)?.clone());
                }
                b'c' => {
                    let mut line = || -> Result<&str, String> {
                        let rest = &data[*pos..];
                        let n = rest
                            .iter()
                            .position(|&b| b == b'\n')
                            .ok_or_else(malformed)?;
                        *pos += n + 1;
                        std::str::from_utf8(&rest[..n]).map_err(|_| malformed())
                    };
                    let module = line()?;
                    stack.push(Value::Global(resolve(module, line()?)?));
                }
                0x93 => match (stack.pop(), stack.pop()) {
                    (Some(Value::Str(name)), Some(Value::Str(module))) => {
                        stack.push(Value::Global(resolve(&module, &name)?))
                    }
                    _ => return Err(malformed()),
                },
                b'}' => stack.push(self.new_dict()),
                b']' => {
                    self.lists.push(Vec::new());
                    stack.push(Value::List(self.lists.len() - 1));
                }
                b')' | b't' | 0x85..=0x87 => {
                    let from = match op {
                        b')' => Some(stack.len()),
                        b't' => marks.pop().filter(|&m| m <= stack.len()),
                        _ => stack.len().checked_sub((op - 0x84).into()),
                    };
                    let items = stack.split_off(from.ok_or_else(malformed)?);
                    // Deeply nested tuples would overflow the thread's stack when printed or
                    // dropped, both of which recurse.
                    let depth = items.iter().map(|v| match v {
                        Value::Tuple(_, depth) => *depth,
                        _ => 0,
                    });
                    let depth = depth.max().unwrap_or(0).checked_add(1).filter(|&d| d <= 32);
                    let depth = depth.ok_or("tuples nested more than 32 deep")?;
                    stack.push(Value::Tuple(items.into(), depth));
                }
                b'Q' => {
                    let id = stack.pop().ok_or_else(malformed)?;
                    stack.push(self.persistent(id)?);
                }
                b'R' => match (stack.pop(), stack.pop()) {
                    (Some(args), Some(f)) => stack.push(self.reduce(f, args)?),
                    _ => return Err(malformed()),
                },
                // BUILD sets attributes: on a state dict's OrderedDict, `_metadata` (the
                // modules' versions), which the tensors do not need.
                b'b' => match (stack.pop(), stack.last()) {
                    (Some(_), Some(Value::Dict(_))) => {}
                    _ => return Err(malformed()),
                },
                b's' | b'u' | b'a' | b'e' => {
                    let from = match op {
                        b's' => stack.len().checked_sub(2),
                        b'a' => stack.len().checked_sub(1),
                        _ => marks.pop().filter(|&m| m <= stack.len()),
                    };
                    let items = stack.split_off(from.ok_or_else(malformed)?);
                    match stack.last() {
                        Some(&Value::Dict(d)) if b"su".contains(&op) && items.len() % 2 == 0 => {
                            let pairs = items.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone()));
                            self.dicts[d].extend(pairs);
                        }
                        Some(&Value::List(l)) if b"ae".contains(&op) => self.lists[l].extend(items),
                        _ => return Err(malformed()),
                    }
                }
                _ => return Err(format!("unsupported pickle opcode 0x{op:02x} at byte {at}")),
            }
        }
    }

    fn new_dict(&mut self) -> Value {
        self.dicts.push(Vec::new());
        Value::Dict(self.dicts.len() - 1)
    }

    /// BINPERSID: `('storage', StorageType, key, location, numel)`, plus a sixth item in
    /// legacy files: `None`, or `(view_key, offset, numel)` for a view of that storage.
    fn persistent(&mut self, id: Value) -> Result<Value, String> {
        let unknown = || format!("an unknown persistent id {}", short(&id));
        let Value::Tuple(items, _) = &id else {
            return Err(unknown());
        };
        let [tag, Value::Global(Global::Storage(kind)), Value::Str(key), _, n, view @ ..] =
            &items[..]
        else {
            return Err(unknown());
        };
        let (root, (offset, numel)) = match view {
            [] | [Value::None] => (int(n)?, (0, int(n)?)),
            [Value::Tuple(v, _)] if v.len() == 3 => (int(n)?, (int(&v[1])?, int(&v[2])?)),
            _ => return Err(unknown()),
        };
        let storage_tag = matches!(tag, Value::Str(t) if &**t == "storage");
        if !storage_tag || root < 0 || offset < 0 || numel < 0 {
            return Err(unknown());
        }
        self.storages.insert(key.to_string(), (*kind, root));
        let (key, kind) = (key.to_string(), *kind);
        Ok(Value::Storage(Rc::new(StorageRef {
            key,
            kind,
            offset,
            numel,
        })))
    }

    /// REDUCE: calls one of the whitelisted globals, which only ever describe data.
    fn reduce(&mut self, f: Value, args: Value) -> Result<Value, String> {
        let cannot = || format!("cannot call {} with {}", short(&f), short(&args));
        let Value::Tuple(a, _) = &args else {
            return Err(cannot());
        };
        match (&f, &a[..]) {
            (Value::Global(Global::OrderedDict), []) => Ok(self.new_dict()),
            (Value::Global(Global::RebuildTensor), [Value::Storage(s), off, size, stride, ..]) => {
                let (storage, offset, size, stride) =
                    (s.clone(), int(off)?, ints(size)?, ints(stride)?);
                if size.len() != stride.len() {
                    return Err(cannot());
                }
                Ok(Value::Tensor(Rc::new(TensorRef {
                    storage,
                    offset,
                    size,
                    stride,
                })))
            }
            (Value::Global(Global::RebuildParameter), [t @ Value::Tensor(_), ..]) => Ok(t.clone()),
            _ => Err(cannot()),
        }
    }

    pub(super) fn get(&self, dict: &Value, key: &str) -> Option<&Value> {
        let Value::Dict(d) = dict else { return None };
        let mut entries = self.dicts[*d].iter().rev();
        entries
            .find(|(k, _)| matches!(k, Value::Str(s) if &**s == key))
            .map(|(_, v)| v)
    }

    /// The dict's entries if it maps names to tensors; a repeated name keeps its last value,
    /// as in Python.
    fn tensors(&self, d: usize) -> Option<Vec<(String, Rc<TensorRef>)>> {
        let mut out: Vec<(String, Rc<TensorRef>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (k, v) in &self.dicts[d] {
            let (Value::Str(name), Value::Tensor(t)) = (k, v) else {
                return None;
            };
            if let Some(&i) = index.get(&**name) {
                out[i].1 = t.clone();
            } else {
                index.insert(name, out.len());
                out.push((name.to_string(), t.clone()));
            }
        }
        Some(out)
    }

    /// The state dict in `root`: root itself, or its single dict of tensors under
    /// "state_dict" or "model", as training scripts save it beside the epoch and optimizer.
    pub(super) fn state_dict(&self, root: &Value) -> Result<Vec<(String, Rc<TensorRef>)>, String> {
        let Value::Dict(d) = root else {
            return Err(format!(
                "the file holds {}, not a dict of tensors",
                short(root)
            ));
        };
        if let Some(named) = self.tensors(*d) {
            return Ok(named);
        }
        let mut nested: Vec<_> = (["state_dict", "model"].iter())
            .filter_map(|k| match self.get(root, k) {
                Some(Value::Dict(n)) => self.tensors(*n),
                _ => None,
            })
            .collect();
        if nested.len() == 1 {
            return Ok(nested.remove(0));
        }
        let keys: Vec<String> = self.dicts[*d].iter().map(|(k, _)| short(k)).collect();
        Err(format!(
            "the top-level dict (keys {}) is not name -> tensor and holds no single dict of \
             tensors under \"state_dict\" or \"model\"",
            keys.join(", ")
        ))
    }
}
