//! What a JSON record's bytes show before any decoder sees them: nesting
//! deeper than decoders may recurse, and raw control characters, which
//! JSON allows only escaped. Found over a whole batch at once; only the
//! records that may be bad are looked at byte by byte.

use super::RawBatch;

/// How deeply a JSON record may nest arrays and objects (below serde_json's
/// own recursion limit of 128, which reads jsonb columns).
pub(super) const MAX_JSON_DEPTH: usize = 100;

/// What a pass over a JSON record's bytes finds wrong before decoding.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Structure {
    Fine,
    /// Nested deeper than [`MAX_JSON_DEPTH`].
    TooDeep(usize),
    /// A byte below 0x20 inside a string, or one that is not whitespace
    /// between tokens; `at` counts from 1.
    ControlCharacter {
        byte: u8,
        at: usize,
    },
}

/// The records of a JSON batch that need [`json_structure`]'s look: more
/// opening brackets than [`MAX_JSON_DEPTH`], or a byte below 0x20 other
/// than their line end. Two passes over the whole batch, not one per
/// record: memchr jumps from bracket to bracket and line to line, and
/// eight bytes at a time are tested for control bytes (only a word holding
/// one is looked at byte by byte). All but hostile or broken records pass.
pub(super) fn structure_suspects(raw: &RawBatch) -> Vec<usize> {
    let buf = raw.bytes();
    let mut suspects = Vec::new();
    let (mut record, mut openers) = (0usize, 0usize);
    for at in memchr::memchr3_iter(b'[', b'{', b'\n', buf) {
        if buf[at] == b'\n' {
            if openers > MAX_JSON_DEPTH {
                suspects.push(record);
            }
            record += 1;
            openers = 0;
        } else {
            openers += 1;
        }
    }
    if openers > MAX_JSON_DEPTH && record < raw.len() {
        suspects.push(record);
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    let below_space = |w: u64| w.wrapping_sub(ONES * 0x20) & !w & (ONES * 0x80) != 0;
    let index_of = |at: usize| raw.starts.partition_point(|&s| s <= at).saturating_sub(1);
    let words = buf.chunks_exact(8);
    let tail_start = buf.len() - words.remainder().len();
    for (i, word) in words.enumerate() {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if below_space(w) {
            for (j, &b) in word.iter().enumerate() {
                if b < 0x20 && b != b'\n' {
                    suspects.push(index_of(i * 8 + j));
                }
            }
        }
    }
    for (j, &b) in buf[tail_start..].iter().enumerate() {
        if b < 0x20 && b != b'\n' {
            suspects.push(index_of(tail_start + j));
        }
    }
    suspects.sort_unstable();
    suspects.dedup();
    suspects
}

/// Checks `record`'s nesting and control characters, byte by byte.
pub(super) fn json_structure(record: &[u8]) -> Structure {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for (at, &b) in record.iter().enumerate() {
        if in_string {
            match b {
                _ if b < 0x20 => {
                    return Structure::ControlCharacter {
                        byte: b,
                        at: at + 1,
                    }
                }
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\t' | b'\n' | b'\r' => {}
            _ if b < 0x20 => {
                return Structure::ControlCharacter {
                    byte: b,
                    at: at + 1,
                }
            }
            _ => {}
        }
    }
    if deepest > MAX_JSON_DEPTH {
        Structure::TooDeep(deepest)
    } else {
        Structure::Fine
    }
}
