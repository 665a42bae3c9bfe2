//! Reading PyTorch checkpoints (`torch.save` of a state dict) without running any pickle code.
//!
//! A `.pth` file is a Python pickle: a small program whose GLOBAL and REDUCE opcodes can call
//! any Python function, so loading an untrusted one with Python's `pickle` can run anything.
//! The `pickle` module beside this one interprets only the opcodes that a state dict needs, with a whitelist of
//! the few globals that rebuild tensors; any other global is refused before anything is built.
//!
//! Two containers hold that pickle:
//! - zip (torch >= 1.6): `<folder>/data.pkl`, with each storage in `<folder>/data/<key>`;
//! - legacy (torch < 1.6, still the format of torchvision's own pretrained files): five
//!   pickles in a row (magic number, format version, system info, the object, the storage
//!   keys), then each storage as a little-endian u64 element count and its raw bytes.
//!
//! Tensors are always built on the CPU, whatever device they were saved from.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use tch::{Device, Tensor};

use super::pickle::{le, take, TensorRef, Unpickler, Value};
use crate::error::{Error, Result};

/// The first pickle of a legacy file: the number by which torch recognises that format.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;

/// Reads a PyTorch checkpoint, in torch's zip format or its legacy one, into name/tensor
/// pairs in the file's order, naming the file in any error. The file must hold a dict of name -> tensor (a `state_dict`), or a dict holding
/// one under `"state_dict"` or `"model"`. Pickle code is never run: anything but tensors,
/// plain Python values and the globals that rebuild tensors is refused.
pub fn read_pth(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let mut head = Vec::with_capacity(4);
    let read_head = File::open(path).and_then(|f| f.take(4).read_to_end(&mut head));
    read_head.map_err(|e| Error::io(path, e))?;
    let result = if head == b"PK\x03\x04" {
        read_zip(File::open(path).map_err(|e| Error::io(path, e))?)
    } else if head.first() == Some(&0x80) {
        // A pickle's first opcode (PROTO): the legacy format is a run of pickles.
        read_legacy(&std::fs::read(path).map_err(|e| Error::io(path, e))?)
    } else {
        Err("not a PyTorch checkpoint (neither torch's zip format nor its legacy one)".into())
    };
    result.map_err(|msg| Error::invalid_data(path, msg))
}

fn read_zip(file: File) -> Result<Vec<(String, Tensor)>, String> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip: {e}"))?;
    // torch puts everything in one folder, named after the file it first saved.
    let pkl = (zip.file_names())
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .ok_or("a zip without `<folder>/data.pkl`, so not a PyTorch checkpoint")?
        .to_owned();
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if let Ok(order) = read_entry(&mut zip, &format!("{prefix}byteorder")) {
        if order.trim_ascii() != b"little" {
            return Err("the tensors are stored big-endian, which is not supported".into());
        }
    }
    let mut up = Unpickler::default();
    let root = up.load(&read_entry(&mut zip, &pkl)?, &mut 0)?;
    let named = up.state_dict(&root)?;
    let mut bytes = HashMap::new();
    for key in named.iter().map(|(_, t)| &t.storage.key) {
        if !bytes.contains_key(key.as_str()) {
            bytes.insert(
                key.as_str(),
                read_entry(&mut zip, &format!("{prefix}data/{key}"))?,
            );
        }
    }
    build_all(&named, |key| bytes.get(key).map(Vec::as_slice))
}

fn read_entry(zip: &mut zip::ZipArchive<File>, name: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let entry = zip.by_name(name).map_err(std::io::Error::from);
    let read = entry.and_then(|mut entry| entry.read_to_end(&mut buf));
    read.map(|_| buf)
        .map_err(|e| format!("entry `{name}`: {e}"))
}

fn read_legacy(data: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
    let (mut up, pos) = (Unpickler::default(), &mut 0);
    if !matches!(up.load(data, pos)?, Value::Int(LEGACY_MAGIC)) {
        return Err("not a PyTorch checkpoint (a pickle without torch's magic number)".into());
    }
    if !matches!(up.load(data, pos)?, Value::Int(1001)) {
        return Err("an unknown version of torch's legacy format".into());
    }
    let info = up.load(data, pos)?;
    if matches!(up.get(&info, "little_endian"), Some(Value::Bool(false))) {
        return Err("the tensors are stored big-endian, which is not supported".into());
    }
    let root = up.load(data, pos)?;
    let Value::List(keys) = up.load(data, pos)? else {
        return Err("the list of storage keys is missing".into());
    };
    // The storages follow in the order of that list; their element types and counts come from
    // the persistent ids met in the object's pickle.
    let mut bytes = HashMap::new();
    for key in &up.lists[keys] {
        let Value::Str(key) = key else {
            return Err("a storage key is not a string".into());
        };
        let &(kind, numel) = (up.storages.get(&**key)).ok_or(format!("unknown storage {key}"))?;
        if le(take(data, pos, 8)?) != numel as u64 {
            return Err(format!("storage {key}: its size differs from the pickle's"));
        }
        let len = (numel as usize)
            .checked_mul(kind.elt_size_in_bytes())
            .ok_or("huge storage")?;
        bytes.insert(key.to_string(), take(data, pos, len)?);
    }
    build_all(&up.state_dict(&root)?, |key| bytes.get(key).copied())
}

fn build_all<'a>(
    named: &[(String, Rc<TensorRef>)],
    bytes: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<Vec<(String, Tensor)>, String> {
    let build = |t: &TensorRef| -> Result<Tensor, String> {
        let data = bytes(&t.storage.key).ok_or("its storage is missing")?;
        build_tensor(t, data)
    };
    let named = named.iter().map(|(name, t)| match build(t) {
        Ok(t) => Ok((name.clone(), t)),
        Err(e) => Err(format!("tensor {name}: {e}")),
    });
    named.collect()
}

/// Builds `t` from the bytes of the storage it views, once sure that every element it reaches
/// lies inside: libtorch would otherwise read memory outside the buffer.
fn build_tensor(t: &TensorRef, data: &[u8]) -> Result<Tensor, String> {
    let (s, elt) = (&t.storage, t.storage.kind.elt_size_in_bytes());
    let slice = (s.offset.checked_add(s.numel))
        .and_then(|end| (end as usize).checked_mul(elt))
        .and_then(|end| data.get(s.offset as usize * elt..end))
        .ok_or(format!(
            "storage {} holds fewer than {} elements",
            s.key, s.numel
        ))?;
    let valid = t.offset >= 0 && t.size.iter().chain(&t.stride).all(|&x| x >= 0);
    let inside = if t.size.contains(&0) {
        t.offset <= s.numel
    } else {
        let mut dims = t.size.iter().zip(&t.stride);
        let last = dims.try_fold(t.offset, |at, (&n, &st)| {
            (n - 1).checked_mul(st)?.checked_add(at)
        });
        last.is_some_and(|last| last < s.numel)
    };
    if !valid || !inside {
        let (size, stride, offset) = (&t.size, &t.stride, t.offset);
        return Err(format!(
            "size {size:?}, strides {stride:?} and offset {offset} reach outside its storage"
        ));
    }
    let torch = |e: tch::TchError| e.to_string();
    let base = Tensor::f_from_data_size(slice, &[s.numel], s.kind).map_err(torch)?;
    let view = base
        .f_as_strided(&t.size, &t.stride, t.offset)
        .map_err(torch)?;
    if t.offset == 0 && view.numel() as i64 == s.numel && view.is_contiguous() {
        return Ok(view);
    }
    // A strided or partial view is copied out, dense and on its own.
    let mut out = Tensor::f_empty(&t.size, (s.kind, Device::Cpu)).map_err(torch)?;
    out.f_copy_(&view).map_err(torch)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;
    use tch::Kind;

    /// A piece of a hand-written pickle: bytes are opcodes and their arguments, text is a
    /// string (BINUNICODE).
    trait Piece {
        fn put(&self, pickle: &mut Vec<u8>);
    }
    impl Piece for str {
        fn put(&self, pickle: &mut Vec<u8>) {
            pickle.push(b'X');
            pickle.extend((self.len() as u32).to_le_bytes());
            pickle.extend(self.as_bytes());
        }
    }
    impl Piece for [u8] {
        fn put(&self, pickle: &mut Vec<u8>) {
            pickle.extend(self);
        }
    }
    impl<const N: usize> Piece for [u8; N] {
        fn put(&self, pickle: &mut Vec<u8>) {
            pickle.extend(self);
        }
    }
    impl<T: Piece + ?Sized> Piece for &T {
        fn put(&self, pickle: &mut Vec<u8>) {
            (**self).put(pickle);
        }
    }
    /// `pickle!(b"\x80\x02cos\nsystem\n" "ls" b"\x85R.")`: pieces side by side, as they read.
    macro_rules! pickle {
        ($($piece:tt)*) => {{
            let mut pickle = Vec::new();
            $(Piece::put(&$piece, &mut pickle);)*
            pickle
        }};
    }

    fn models_dir() -> Option<PathBuf> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("CONVKIT_MODELS")
            .map_or_else(|| manifest.join("../../../shared/models"), PathBuf::from);
        dir.is_dir().then_some(dir)
    }

    /// A checkpoint laid out as `torch.save` writes it: `ckpt/data.pkl` and the storages.
    fn write_zip(path: &Path, pickle: &[u8], storages: &[(&str, &[u8])]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut entries = vec![("ckpt/data.pkl".to_owned(), pickle)];
        entries.push(("ckpt/byteorder".to_owned(), b"little"));
        entries.extend(storages.iter().map(|(k, b)| (format!("ckpt/data/{k}"), *b)));
        for (name, bytes) in entries {
            zip.start_file(name, stored).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` as torch
    /// pickles it, the storage being `numel` elements of `torch.<storage>` saved under `key`.
    fn tensor(storage: &str, key: &str, numel: u8, offset: u8, dims: [&[u8]; 2]) -> Vec<u8> {
        let storage = format!("ctorch\n{storage}\n");
        let mut p =
            pickle!(b"ctorch._utils\n_rebuild_tensor_v2\n((" "storage" (storage.as_bytes()));
        p.extend(pickle!(key "cpu" [b'K', numel, b't', b'Q', b'K', offset]));
        for dims in dims {
            p.push(b'(');
            dims.iter().for_each(|&d| p.extend([b'K', d]));
            p.push(b't');
        }
        p.extend(b"\x89h\x00)RtR"); // False, OrderedDict() (memo 0), TUPLE, REDUCE
        p
    }

    /// An OrderedDict of name -> tensor, with `_metadata` set by BUILD as in a real state dict.
    fn state_dict(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)R(".to_vec();
        entries
            .iter()
            .for_each(|(name, t)| p.extend(pickle!(name(t.as_slice()))));
        p.extend(pickle!(b"u}" "_metadata" b"h\x00)Rsb."));
        p
    }

    #[test]
    fn torchvision_mobilenet_matches_its_safetensors_twin() {
        let Some(dir) = models_dir() else {
            return eprintln!("skipped: no shared/models (set CONVKIT_MODELS)");
        };
        let dir = dir.join("mobilenet_v2_torchvision");
        let pth = read_pth(&dir.join("mobilenet_v2-b0353104.pth")).unwrap();
        let twin = Tensor::read_safetensors(dir.join("mobilenet_v2.safetensors")).unwrap();
        let twin: HashMap<String, Tensor> = twin.into_iter().collect();
        let bytes = |t: &Tensor| {
            let mut out = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
            t.copy_data_u8(&mut out, t.numel());
            out
        };
        assert_eq!((pth.len(), twin.len()), (314, 314));
        for (name, t) in &pth {
            let want = &twin[name];
            assert_eq!((t.kind(), t.size()), (want.kind(), want.size()), "{name}");
            assert!(bytes(t) == bytes(want), "{name} differs");
        }
        let scalars = pth.iter().filter(|(_, t)| t.kind() == Kind::Int64);
        assert_eq!(scalars.count(), 52);
    }

    #[test]
    fn strided_views_offsets_and_nested_state_dicts_load() {
        let dir = tempfile::tempdir().unwrap();
        let floats: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let storages: [(&str, &[u8]); 2] = [("0", &floats), ("1", &9i64.to_le_bytes())];
        // w[i][j] = storage[1 + i + 3 j]: a transposed (3, 2) view from offset 1.
        let sd = state_dict(&[
            ("w", tensor("FloatStorage", "0", 8, 1, [&[3, 2], &[1, 3]])),
            ("last", tensor("FloatStorage", "0", 8, 7, [&[], &[]])),
            ("n", tensor("LongStorage", "1", 1, 0, [&[], &[]])),
        ]);
        // {"epoch": 3, "state_dict": <sd without its PROTO and STOP>}, as training scripts save.
        let nested =
            pickle!(b"\x80\x02}(" "epoch" b"K\x03" "state_dict" (&sd[2..sd.len() - 1]) b"u.");
        for (file, pickle) in [("flat.pth", &sd), ("nested.pth", &nested)] {
            let path = dir.path().join(file);
            write_zip(&path, pickle, &storages);
            let got = read_pth(&path).unwrap();
            let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["w", "last", "n"]);
            let w = &got[0].1;
            assert!(w.is_contiguous() && w.size() == [3, 2]);
            let w = Vec::<f32>::try_from(w.flatten(0, -1)).unwrap();
            assert_eq!(w, [1., 4., 2., 5., 3., 6.]);
            assert_eq!(got[1].1.double_value(&[]), 7.0);
            let n = &got[2].1;
            assert_eq!((n.kind(), n.int64_value(&[])), (Kind::Int64, 9));
        }
        // A view reaching past its storage is refused, not read out of bounds.
        let path = dir.path().join("outside.pth");
        let bad = state_dict(&[("w", tensor("FloatStorage", "0", 8, 3, [&[3, 2], &[1, 3]]))]);
        write_zip(&path, &bad, &storages);
        let err = read_pth(&path).unwrap_err().to_string();
        assert!(
            err.contains("outside.pth") && err.contains("reach outside"),
            "{err}"
        );
        // A top-level dict that neither is a state dict nor holds one.
        write_zip(&path, &pickle!(b"\x80\x02}(" "epoch" b"K\x03u."), &[]);
        let err = read_pth(&path).unwrap_err().to_string();
        assert!(
            err.contains("outside.pth") && err.contains("\"epoch\""),
            "{err}"
        );
    }

    #[test]
    fn globals_outside_the_whitelist_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.pth");
        let cmd = "touch /tmp/convkit-pth-pwned";
        let calls = [
            ("os.system", pickle!(b"\x80\x02cos\nsystem\n" cmd b"\x85R.")),
            (
                "builtins.eval",
                pickle!(b"\x80\x04" "builtins" "eval" b"\x93" "1" b"\x85R."),
            ),
            (
                "__builtin__.getattr",
                pickle!(b"\x80\x02c__builtin__\ngetattr\n" cmd cmd b"\x86R."),
            ),
        ];
        for (global, pickle) in calls {
            write_zip(&path, &pickle, &[]);
            let err = read_pth(&path).unwrap_err().to_string();
            assert!(
                err.contains("evil.pth") && err.contains(&format!("`{global}`")),
                "{err}"
            );
        }
        assert!(!Path::new("/tmp/convkit-pth-pwned").exists());
    }

    #[test]
    fn broken_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.pth");
        let names_it = |path: &Path| {
            let err = read_pth(path).unwrap_err().to_string();
            assert!(
                err.contains(&*path.file_name().unwrap().to_string_lossy()),
                "{err}"
            );
        };
        let check = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            names_it(&path);
        };
        check(b"");
        check(b"plain text, not a checkpoint");
        names_it(&dir.path().join("absent.pth"));
        // Tuples nested a million deep: an error, not a stack overflow.
        let deep = [&b"\x80\x02N"[..], &[0x85; 1_000_000], b"."].concat();
        write_zip(&path, &deep, &[]);
        names_it(&path);
        // Every truncation and every one-byte change of a valid pickle gives an error or a
        // tensor, never a panic.
        let sd = state_dict(&[("w", tensor("FloatStorage", "0", 2, 0, [&[2], &[1]]))]);
        let zipped = dir.path().join("fuzz.pth");
        for at in 0..sd.len() {
            write_zip(&zipped, &sd[..at], &[("0", &[0; 8])]);
            names_it(&zipped);
            let mut changed = sd.clone();
            changed[at] ^= 0x5a;
            write_zip(&zipped, &changed, &[("0", &[0; 8])]);
            let _ = read_pth(&zipped);
        }
        // A missing storage, and a zip cut short.
        write_zip(&zipped, &sd, &[]);
        assert!(read_pth(&zipped)
            .unwrap_err()
            .to_string()
            .contains("data/0"));
        let whole = std::fs::read(&zipped).unwrap();
        check(&whole[..whole.len() / 2]);
        // The real (legacy) file cut inside its pickles and inside its storages.
        if let Some(models) = models_dir() {
            let real = models.join("mobilenet_v2_torchvision/mobilenet_v2-b0353104.pth");
            let real = std::fs::read(real).unwrap();
            for cut in [3, 100, 40_000, 50_000, 1_000_000, real.len() - 1] {
                check(&real[..cut]);
            }
        }
    }
}
