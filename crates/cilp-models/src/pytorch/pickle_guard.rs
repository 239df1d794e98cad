//! A pre-flight scan of the pickles in a PyTorch file, run before the file is parsed.
//!
//! The reader behind [`super::StateDict`] never executes code (it is a pure-Rust pickle
//! interpreter), but a file whose pickle imports `os.system`, `builtins.eval`,
//! `subprocess.Popen`, ... *would* run code in Python's `torch.load` (without
//! `weights_only=True`). Such a file is hostile or at best not a state dict, and it is refused
//! with an error naming the offending global rather than half-loaded.
//!
//! The scan walks every opcode of every pickle the reader would unpickle (`data.pkl` of a
//! ZIP checkpoint; the five pickles of a legacy file; a plain pickle) and checks each
//! callable a pickle can name (`GLOBAL`, `INST`, `STACK_GLOBAL`) against an allow-list: the
//! globals `torch.save` writes for a state dict (tensor rebuilders, storage types, dtypes,
//! `OrderedDict`, ...), i.e. roughly what PyTorch's own `weights_only` unpickler accepts.
//! Callables can only enter a pickle through those opcodes (the extension-registry opcodes
//! `EXT1/2/4` are refused outright), so checking them is sufficient.
//!
//! The scan streams the bytes: no allocation depends on a length read from the file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};

/// Why a file was refused, or could not be scanned.
#[derive(Debug)]
pub(crate) enum GuardError {
    /// The pickle names a callable outside the allow-list.
    Forbidden { global: String, entry: String },
    /// The pickle is malformed (as far as a scan can tell), or the container could not be
    /// read.
    Malformed(String),
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardError::Forbidden { global, entry } => write!(
                f,
                "refusing to load it: its pickle ({entry}) imports `{global}`, which is not one of \
                 the globals a PyTorch state dict uses (tensor rebuilders, storage types, dtypes, \
                 OrderedDict). In Python, unpickling this file could run arbitrary code, so it is \
                 treated as hostile; nothing from it was executed"
            ),
            GuardError::Malformed(m) => write!(f, "{m}"),
        }
    }
}

fn malformed(entry: &str, offset: u64, what: impl std::fmt::Display) -> GuardError {
    GuardError::Malformed(format!("malformed pickle ({entry}) at byte {offset}: {what}"))
}

/// Storage types `torch.save` names (`torch.FloatStorage`, ...).
const STORAGE_TYPES: &[&str] = &[
    "FloatStorage",
    "DoubleStorage",
    "HalfStorage",
    "BFloat16Storage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
    "ComplexFloatStorage",
    "ComplexDoubleStorage",
    "UntypedStorage",
    "TypedStorage",
];

/// `torch.<dtype>` globals (a pickled `torch.dtype`).
const DTYPES: &[&str] = &[
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "complex64",
    "complex128",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
    "bool",
];

/// Whether `module.name` may appear in a state-dict pickle.
pub(crate) fn is_allowed_global(module: &str, name: &str) -> bool {
    match module {
        "collections" => name == "OrderedDict",
        "builtins" | "__builtin__" => matches!(name, "set" | "frozenset"),
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor" | "_rebuild_tensor_v2" | "_rebuild_tensor_v3" | "_rebuild_parameter" | "_rebuild_parameter_with_state"
        ),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch.nn.parameter" => name == "Parameter",
        "torch.storage" => matches!(name, "UntypedStorage" | "TypedStorage"),
        "torch" => STORAGE_TYPES.contains(&name) || DTYPES.contains(&name) || matches!(name, "Size" | "device" | "Tensor"),
        _ => false,
    }
}

/// Longest `GLOBAL`/`INST` line kept; real module paths are far shorter.
const MAX_NAME_LINE: usize = 4096;
/// Strings longer than this are never tracked as `STACK_GLOBAL` operands.
const MAX_TRACKED_STRING: u64 = 1024;
/// Total bytes of memoised strings tracked; beyond it, new ones are not recorded (a later
/// `STACK_GLOBAL` fetching one is then refused as unresolvable).
const MAX_TRACKED_MEMO_BYTES: usize = 16 << 20;
/// Bound on the number of memo entries (a state dict of 100k tensors needs about a million).
const MAX_MEMO_ENTRIES: usize = 1 << 22;
/// Bound on the bytes of a legacy file's header pickles and of a ZIP `data.pkl`, the same as
/// the reader's (`pytorch_reader::MAX_PICKLE_SIZE`).
const MAX_PICKLE_BYTES: u64 = 100 * 1024 * 1024;

/// Scan the pickles of a PyTorch file (ZIP, legacy or plain pickle), opened by the caller
/// (`cilp_data::io::open_bounded`: a regular file within the size limit).
pub(crate) fn check_file(mut file: File) -> Result<(), GuardError> {
    let io_err = |e: io::Error| GuardError::Malformed(format!("cannot read the file: {e}"));
    let mut header = [0u8; 512];
    let mut n = 0;
    while n < header.len() {
        match file.read(&mut header[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    let header = &header[..n];
    file.rewind().map_err(io_err)?;
    if header.starts_with(b"PK\x03\x04") || header.starts_with(b"PK\x05\x06") {
        check_zip(file)
    } else if header.get(257..262) == Some(b"ustar") {
        Err(GuardError::Malformed(
            "the pre-1.0 TAR checkpoint container is not supported; re-save the weights with \
             a current PyTorch (`torch.save(model.state_dict(), path)`)"
                .into(),
        ))
    } else {
        // A legacy file is five pickles back to back (magic number, protocol version, system
        // info, the data, storage keys) followed by raw storage bytes; a plain pickle is one.
        let count = if starts_with_legacy_magic(header) { 5 } else { 1 };
        let mut r = BufReader::new(file.take(MAX_PICKLE_BYTES));
        let mut offset = 0u64;
        for i in 0..count {
            let entry = if count == 1 { "pickle".to_string() } else { format!("legacy pickle {}", i + 1) };
            offset = scan_pickle(&mut r, offset, &entry)?;
        }
        Ok(())
    }
}

fn check_zip(file: File) -> Result<(), GuardError> {
    let zip_err = |e: zip::result::ZipError| GuardError::Malformed(format!("not a readable ZIP checkpoint: {e}"));
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err)?;
    // Every entry the reader could take as the pickle: any `.../data.pkl` (it picks the one
    // closest to the root) and, for good measure, any other `.pkl`.
    let names: Vec<String> = archive
        .file_names()
        .collect::<zip::result::ZipResult<Vec<_>>>()
        .map_err(zip_err)?
        .into_iter()
        .filter(|n| n.ends_with(".pkl"))
        .map(|n| n.to_string())
        .collect();
    for name in names {
        let entry = archive.by_name(&name).map_err(zip_err)?;
        let mut r = BufReader::new(entry.take(MAX_PICKLE_BYTES));
        scan_pickle(&mut r, 0, &name)?;
    }
    Ok(())
}

/// See `pytorch_reader`'s format detection: the legacy magic number as a pickled `LONG1`
/// (protocol 2+) or as `LONG` text (protocols 0/1) near the start of the file.
fn starts_with_legacy_magic(header: &[u8]) -> bool {
    const BYTES: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    const TEXT: &[u8] = b"119547037146038801333356";
    let window = &header[..header.len().min(64)];
    window.windows(BYTES.len()).any(|w| w == BYTES) || window.windows(TEXT.len()).any(|w| w == TEXT)
}

fn io_error(entry: &str, pos: u64, e: io::Error) -> GuardError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        malformed(entry, pos, "unexpected end of data (truncated file?)")
    } else {
        malformed(entry, pos, e)
    }
}

/// A reader that counts the bytes taken, for error offsets.
struct Counting<'a, R> {
    inner: &'a mut R,
    pos: u64,
    entry: &'a str,
}

impl<R: BufRead> Counting<'_, R> {
    fn err(&self, what: impl std::fmt::Display) -> GuardError {
        malformed(self.entry, self.pos, what)
    }

    fn io(&self, e: io::Error) -> GuardError {
        io_error(self.entry, self.pos, e)
    }

    fn u8(&mut self) -> Result<u8, GuardError> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b).map_err(|e| self.io(e))?;
        self.pos += 1;
        Ok(b[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], GuardError> {
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b).map_err(|e| self.io(e))?;
        self.pos += N as u64;
        Ok(b)
    }

    /// Skip `len` bytes, or return them when `len <= keep`.
    fn bytes(&mut self, len: u64, keep: u64) -> Result<Option<Vec<u8>>, GuardError> {
        if len <= keep {
            let mut v = vec![0u8; len as usize];
            self.inner.read_exact(&mut v).map_err(|e| self.io(e))?;
            self.pos += len;
            Ok(Some(v))
        } else {
            let copied = io::copy(&mut (&mut *self.inner).take(len), &mut io::sink()).map_err(|e| self.io(e))?;
            self.pos += copied;
            if copied < len {
                return Err(self.err("unexpected end of data (truncated file?)"));
            }
            Ok(None)
        }
    }

    /// A `\n`-terminated line, kept (without the newline) when at most `keep` bytes long.
    fn line(&mut self, keep: usize) -> Result<Option<Vec<u8>>, GuardError> {
        let mut kept = Some(Vec::new());
        loop {
            let (entry, pos) = (self.entry, self.pos);
            let buf = self.inner.fill_buf().map_err(|e| io_error(entry, pos, e))?;
            if buf.is_empty() {
                return Err(malformed(entry, pos, "unexpected end of data inside a text line"));
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if let Some(v) = kept.as_mut() {
                if v.len() + chunk.len() <= keep {
                    v.extend_from_slice(chunk);
                } else {
                    kept = None;
                }
            }
            let used = done.unwrap_or(buf.len());
            self.inner.consume(used);
            self.pos += used as u64;
            if done.is_some() {
                return Ok(kept);
            }
        }
    }
}

fn utf8(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.and_then(|b| String::from_utf8(b).ok())
}

/// Strip the quotes of a protocol-0 `STRING` argument (`'abc'`), if it has no escapes.
fn unquote(line: Option<Vec<u8>>) -> Option<String> {
    let s = utf8(line)?;
    let inner =
        s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))?;
    (!inner.contains('\\')).then(|| inner.to_string())
}

fn memo_index(line: Option<Vec<u8>>) -> Option<u32> {
    utf8(line)?.trim().parse().ok()
}

/// Scan one pickle (up to and including its `STOP`), starting at `offset` (for messages).
/// Returns the offset after the `STOP`.
fn scan_pickle<R: BufRead>(r: &mut R, offset: u64, entry: &str) -> Result<u64, GuardError> {
    let mut c = Counting { inner: r, pos: offset, entry };
    // Strings pushed since the last opcode that might have touched the stack otherwise:
    // the operands a `STACK_GLOBAL` takes (`None`: a value that is not a tracked string).
    let mut recent: Vec<Option<String>> = Vec::new();
    // The memo as far as strings go: every key the pickle has set (Python's `MEMOIZE` uses
    // the memo's size as the next key), with its value when that is a tracked string.
    let mut memo: HashMap<u32, Option<String>> = HashMap::new();
    let mut memo_bytes = 0usize;

    let check = |module: &str, name: &str| -> Result<(), GuardError> {
        if is_allowed_global(module, name) {
            Ok(())
        } else {
            Err(GuardError::Forbidden { global: format!("{module}.{name}"), entry: entry.to_string() })
        }
    };

    loop {
        let at = c.pos;
        let op = c.u8()?;
        // What this opcode pushes, if it is a string push; `None` for every other opcode,
        // which clears `recent` (the stack below is no longer known).
        let mut pushed: Option<Option<String>> = None;
        let mut memoize: Option<u32> = None;
        match op {
            b'.' => return Ok(c.pos), // STOP
            // No argument.
            b'(' | b'0' | b'1' | b'2' | b'N' | b'Q' | b'R' | b'a' | b'b' | b'd' | b'}' | b'e' | b'l' | b']' | b'o' | b's' | b't' | b')'
            | b'u' | 0x81 | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x92 | 0x97 | 0x98 => {}
            // A text line: FLOAT, INT, LONG, PERSID.
            b'F' | b'I' | b'L' | b'P' => {
                c.line(0)?;
            }
            b'S' => pushed = Some(unquote(c.line(MAX_TRACKED_STRING as usize)?)), // STRING
            b'V' => {
                // UNICODE (raw-unicode-escape): tracked only without escapes.
                let s = utf8(c.line(MAX_TRACKED_STRING as usize)?).filter(|s| !s.contains('\\'));
                pushed = Some(s);
            }
            b'J' => {
                c.le::<4>()?;
            }
            b'K' | b'h' | b'q' | 0x80 | 0x82 => {
                let v = c.u8()?;
                match op {
                    b'h' => pushed = Some(memo.get(&(v as u32)).cloned().flatten()), // BINGET
                    b'q' => memoize = Some(v as u32),                                // BINPUT
                    0x80 if v > 5 => {
                        return Err(malformed(entry, at, format!("unsupported protocol {v}")));
                    }
                    0x82 => {
                        return Err(GuardError::Forbidden {
                            global: format!("extension registry code {v} (EXT1)"),
                            entry: entry.to_string(),
                        });
                    }
                    _ => {}
                }
            }
            b'M' | 0x83 => {
                let v = u16::from_le_bytes(c.le::<2>()?);
                if op == 0x83 {
                    return Err(GuardError::Forbidden { global: format!("extension registry code {v} (EXT2)"), entry: entry.to_string() });
                }
            }
            b'j' | b'r' | 0x84 => {
                let v = u32::from_le_bytes(c.le::<4>()?);
                match op {
                    b'j' => pushed = Some(memo.get(&v).cloned().flatten()), // LONG_BINGET
                    b'r' => memoize = Some(v),                              // LONG_BINPUT
                    _ => {
                        return Err(GuardError::Forbidden {
                            global: format!("extension registry code {v} (EXT4)"),
                            entry: entry.to_string(),
                        });
                    }
                }
            }
            b'G' => {
                c.le::<8>()?;
            }
            b'g' => pushed = Some(memo_index(c.line(32)?).and_then(|i| memo.get(&i).cloned().flatten())),
            b'p' => match memo_index(c.line(32)?) {
                Some(i) => memoize = Some(i),
                None => return Err(malformed(entry, at, "PUT with an invalid memo index")),
            },
            0x94 => memoize = Some(memo.len() as u32), // MEMOIZE
            // GLOBAL / INST: "module\nname\n".
            b'c' | b'i' => {
                let module = utf8(c.line(MAX_NAME_LINE)?);
                let name = utf8(c.line(MAX_NAME_LINE)?);
                match (module, name) {
                    (Some(m), Some(n)) => check(&m, &n)?,
                    _ => {
                        return Err(malformed(entry, at, "GLOBAL with an overlong or non-UTF-8 name"));
                    }
                }
            }
            0x93 => {
                // STACK_GLOBAL: module and name are the two values on top of the stack.
                let name = recent.pop().flatten();
                let module = recent.pop().flatten();
                match (module, name) {
                    (Some(m), Some(n)) => check(&m, &n)?,
                    _ => {
                        return Err(GuardError::Forbidden {
                            global: "a global whose name is not a literal string (STACK_GLOBAL)".into(),
                            entry: entry.to_string(),
                        });
                    }
                }
            }
            // Length-prefixed strings and bytes.
            b'T' | b'X' | b'B' | 0x8b => {
                let len = u32::from_le_bytes(c.le::<4>()?);
                if op == 0x8b && (len as i32) < 0 {
                    return Err(malformed(entry, at, "LONG4 with a negative length"));
                }
                let keep = if matches!(op, b'T' | b'X') { MAX_TRACKED_STRING } else { 0 };
                let v = c.bytes(len as u64, keep)?;
                if keep > 0 {
                    pushed = Some(utf8(v));
                }
            }
            b'U' | b'C' | 0x8a | 0x8c => {
                let len = c.u8()? as u64;
                let v = c.bytes(len, len)?;
                if matches!(op, b'U' | 0x8c) {
                    pushed = Some(utf8(v));
                }
            }
            0x8d | 0x8e | 0x96 => {
                let len = u64::from_le_bytes(c.le::<8>()?);
                let keep = if op == 0x8d { MAX_TRACKED_STRING } else { 0 };
                let v = c.bytes(len, keep)?;
                if op == 0x8d {
                    pushed = Some(utf8(v));
                }
            }
            // FRAME: only a length hint; the framed opcodes follow inline.
            0x95 => {
                c.le::<8>()?;
                continue;
            }
            other => {
                return Err(malformed(entry, at, format!("invalid pickle opcode 0x{other:02x}")));
            }
        }

        if let Some(idx) = memoize {
            // Memoising leaves the stack unchanged.
            if memo.len() >= MAX_MEMO_ENTRIES && !memo.contains_key(&idx) {
                return Err(malformed(entry, at, "more memo entries than any state dict needs"));
            }
            let value = recent.last().cloned().flatten().filter(|s| memo_bytes + s.len() <= MAX_TRACKED_MEMO_BYTES);
            memo_bytes += value.as_ref().map_or(0, String::len);
            memo.insert(idx, value);
            continue;
        }
        match pushed {
            Some(value) => {
                // Only the top two values can be a STACK_GLOBAL's operands.
                if recent.len() == 2 {
                    recent.remove(0);
                }
                recent.push(value);
            }
            None if op == 0x80 => {} // PROTO
            None => recent.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(bytes: &[u8]) -> Result<u64, GuardError> {
        scan_pickle(&mut io::Cursor::new(bytes), 0, "test")
    }

    fn forbidden(bytes: &[u8]) -> String {
        match scan(bytes) {
            Err(GuardError::Forbidden { global, .. }) => global,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn allows_what_torch_save_writes() {
        // Protocol 2 GLOBALs as in lidar_cnn.pt.
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02ctorch\nFloatStorage\nq\x03.";
        assert_eq!(scan(p).unwrap(), p.len() as u64);
        // Protocol 4 STACK_GLOBAL with memoised strings reused through BINGET.
        let p = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05torch\x94\x8c\x0cFloatStorage\x94\x93\x94h\x00\x8c\x07float32\x94\x93\x94\x86\x94.";
        assert_eq!(scan(p).unwrap(), p.len() as u64);
    }

    #[test]
    fn refuses_code_execution_globals() {
        assert_eq!(forbidden(b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R."), "posix.system");
        assert_eq!(forbidden(b"cos\nsystem\n(S'id'\ntR."), "os.system");
        assert_eq!(forbidden(b"(S'x'\nibuiltins\neval\n."), "builtins.eval");
        // STACK_GLOBAL with literal operands, and via the memo.
        assert_eq!(forbidden(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93."), "builtins.eval");
        assert_eq!(forbidden(b"\x80\x04\x8c\x08builtins\x94\x8c\x04exec\x94h\x00h\x01\x93."), "builtins.exec");
        // An allowed-looking module with a forbidden name.
        assert_eq!(forbidden(b"ctorch\nload\n."), "torch.load");
        // STACK_GLOBAL whose operands were built at run time.
        assert!(forbidden(b"\x80\x04\x8c\x02os\x8c\x03sys\x8c\x04tem\x86\x93.").contains("STACK_GLOBAL"));
        // The extension registry can name any callable.
        assert!(forbidden(b"\x80\x02\x82\x01.").contains("EXT1"));
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        let mut p = b"\x80\x04\x8d".to_vec();
        p.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(scan(&p), Err(GuardError::Malformed(m)) if m.contains("truncated")));
        let mut p = b"\x80\x04\x8e".to_vec();
        p.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(scan(&p), Err(GuardError::Malformed(_))));
        assert!(matches!(scan(b"\x80\x02\xff."), Err(GuardError::Malformed(m)) if m.contains("0xff")));
        assert!(matches!(scan(b"\x80\x02"), Err(GuardError::Malformed(_))));
    }
}
