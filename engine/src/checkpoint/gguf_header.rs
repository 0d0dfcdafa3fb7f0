//! The checks a GGUF header gets before anything is read from the file: every tensor's declared
//! shape and place against the file's length (a truncated or forged file fails here, before any
//! allocation), and a walk over the metadata that refuses an alignment candle would divide by.

use candle_core::quantized::gguf_file::TensorInfo;

use super::gguf::GgufTensor;

/// Check a tensor's declared shape and place: a whole number of blocks, inside the file, at an
/// offset aligned for the block types (candle casts the bytes in place).
pub(super) fn check_tensor(
    name: &str,
    info: &TensorInfo,
    data_offset: u64,
    file_len: u64,
) -> std::result::Result<GgufTensor, String> {
    let dims = info.shape.dims().to_vec();
    let elems = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format!("tensor `{name}` declares {dims:?} elements, more than fit in memory")
        })?;
    let block = info.ggml_dtype.block_size();
    if elems % block != 0 {
        return Err(format!(
            "tensor `{name}` of {elems} values is not a whole number of {block}-value blocks"
        ));
    }
    let len = (elems / block)
        .checked_mul(info.ggml_dtype.type_size())
        .ok_or_else(|| format!("tensor `{name}` declares an impossible size"))?;
    let start = data_offset
        .checked_add(info.offset)
        .filter(|s| s.checked_add(len as u64).is_some_and(|end| end <= file_len))
        .ok_or_else(|| {
            format!(
                "truncated: tensor `{name}` needs {len} bytes at offset {} of the data, the file holds {file_len} bytes",
                info.offset
            )
        })?;
    if start % 8 != 0 {
        return Err(format!(
            "tensor `{name}` starts at byte {start}, not aligned"
        ));
    }
    Ok(GgufTensor {
        dtype: info.ggml_dtype,
        dims,
        start: start as usize,
        len,
    })
}

/// Walk the metadata once before candle parses it, to refuse a `general.alignment` of 0 or one that
/// is not a multiple of 8 (the GGUF rule; candle would divide by it).
pub(super) fn check_alignment(bytes: &[u8]) -> std::result::Result<(), String> {
    let mut scan = Scan {
        bytes,
        at: 0,
        wide: true,
    };
    let magic = scan.take(4)?;
    if magic != b"GGUF" {
        return Err("it does not start with GGUF".into());
    }
    let version = u32::from_le_bytes(scan.array()?);
    let wide = match version {
        1 => false,
        2 | 3 => true,
        v => return Err(format!("GGUF version {v} is not supported")),
    };
    let mut scan = Scan { wide, ..scan };
    scan.length()?; // tensor count
    let kv_count = scan.length()?;
    for _ in 0..kv_count {
        let key_len = scan.length()?;
        let key = scan.take(key_len)?.to_vec();
        let value_type = u32::from_le_bytes(scan.array()?);
        if key == b"general.alignment" {
            let alignment = match value_type {
                0 | 1 => u64::from(scan.take(1)?[0]),
                2 | 3 => u64::from(u16::from_le_bytes(scan.array()?)),
                4 | 5 => u64::from(u32::from_le_bytes(scan.array()?)),
                _ => return Err("general.alignment is not an integer".into()),
            };
            if alignment == 0 || alignment % 8 != 0 {
                return Err(format!(
                    "general.alignment {alignment} is not a positive multiple of 8"
                ));
            }
            return Ok(());
        }
        scan.skip_value(value_type, 0)?;
    }
    Ok(())
}

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    wide: bool,
}

impl Scan<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("truncated header")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn length(&mut self) -> std::result::Result<usize, String> {
        let n = if self.wide {
            u64::from_le_bytes(self.array()?)
        } else {
            u64::from(u32::from_le_bytes(self.array()?))
        };
        usize::try_from(n).map_err(|_| "a length does not fit in memory".to_string())
    }

    fn skip_value(&mut self, value_type: u32, depth: usize) -> std::result::Result<(), String> {
        if depth > 8 {
            return Err("metadata arrays nest too deep".into());
        }
        let fixed = match value_type {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => {
                let len = self.length()?;
                self.take(len)?;
                return Ok(());
            }
            9 => {
                let inner = u32::from_le_bytes(self.array()?);
                let len = self.length()?;
                let fixed = match inner {
                    0 | 1 | 7 => Some(1usize),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    _ => None,
                };
                if let Some(size) = fixed {
                    self.take(len.checked_mul(size).ok_or("truncated header")?)?;
                } else {
                    for _ in 0..len {
                        if self.at >= self.bytes.len() {
                            return Err("truncated header".into());
                        }
                        self.skip_value(inner, depth + 1)?;
                    }
                }
                return Ok(());
            }
            other => return Err(format!("unknown metadata type {other}")),
        };
        self.take(fixed)?;
        Ok(())
    }
}
