//! Cutting a byte stream into records: lines (CSV records may hold
//! newlines inside quoted fields), numbered, collected into batches of at
//! most [`MAX_BATCH_RECORDS`]. The file and socket sources read this way.

use crate::format::RawBatch;

pub(crate) const MAX_BATCH_RECORDS: usize = 8192;

/// Splits a byte stream into lines, carrying a partial line between reads.
/// For CSV, a newline inside a quoted field does not end the record.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    pub(crate) line: u64,
    /// CSV: quotes count, and `partial` ends inside a quoted field when it
    /// holds an odd number of them.
    pub(crate) csv: bool,
    open_quote: bool,
}

impl LineSplitter {
    /// A splitter from the start of a stream; `csv` keeps quoted newlines.
    pub(crate) fn new(csv: bool) -> Self {
        LineSplitter {
            csv,
            ..LineSplitter::default()
        }
    }

    /// A splitter resuming after line `line` (lines are numbered from 1).
    pub(crate) fn at_line(csv: bool, line: u64) -> Self {
        LineSplitter {
            line,
            ..LineSplitter::new(csv)
        }
    }

    /// Pushes every complete line of `data` (without `\n` / `\r\n`, blank
    /// lines skipped) into `raw`, numbered from 1.
    pub(crate) fn feed(&mut self, mut data: &[u8], raw: &mut RawBatch) {
        while let Some(nl) = memchr::memchr(b'\n', data) {
            self.line += 1;
            if self.csv {
                // `""` inside a quoted field flips twice: parity is enough.
                let quotes = memchr::memchr_iter(b'"', &data[..nl]).count();
                self.open_quote ^= quotes % 2 == 1;
                if self.open_quote {
                    self.partial.extend_from_slice(&data[..=nl]);
                    data = &data[nl + 1..];
                    continue;
                }
            }
            if self.partial.is_empty() {
                push_line(&data[..nl], self.line, raw);
            } else {
                self.partial.extend_from_slice(&data[..nl]);
                let line = std::mem::take(&mut self.partial);
                push_line(&line, self.line, raw);
            }
            data = &data[nl + 1..];
        }
        if self.csv {
            let quotes = memchr::memchr_iter(b'"', data).count();
            self.open_quote ^= quotes % 2 == 1;
        }
        self.partial.extend_from_slice(data);
    }

    /// Bytes of a line begun and not yet ended (carried to the next read).
    pub(crate) fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// At the end of input, the last line may lack its newline.
    pub(crate) fn finish(&mut self, raw: &mut RawBatch) {
        if !self.partial.is_empty() {
            self.line += 1;
            let line = std::mem::take(&mut self.partial);
            push_line(&line, self.line, raw);
        }
    }
}

fn push_line(line: &[u8], number: u64, raw: &mut RawBatch) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    raw.push(line, number);
}

/// Keeps batches at most `MAX_BATCH_RECORDS` long.
pub(crate) fn split_batch(raw: RawBatch) -> Vec<RawBatch> {
    if raw.len() <= MAX_BATCH_RECORDS {
        return vec![raw];
    }
    let mut out = Vec::new();
    let mut cur = RawBatch::with_capacity(MAX_BATCH_RECORDS, 0);
    for i in 0..raw.len() {
        cur.push(raw.record(i), raw.seq[i]);
        if cur.len() == MAX_BATCH_RECORDS {
            out.push(std::mem::replace(
                &mut cur,
                RawBatch::with_capacity(MAX_BATCH_RECORDS, 0),
            ));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_keep_newlines_inside_quotes() {
        let mut s = LineSplitter {
            csv: true,
            ..LineSplitter::default()
        };
        let mut raw = RawBatch::default();
        s.feed(
            b"1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n3,\"split",
            &mut raw,
        );
        s.feed(b" across\nreads\",x\n", &mut raw);
        let records: Vec<&[u8]> = (0..raw.len()).map(|i| raw.record(i)).collect();
        assert_eq!(
            records,
            vec![
                &b"1,\"two\nlines\""[..],
                &b"2,\"say \"\"hi\"\"\""[..],
                &b"3,\"split across\nreads\",x"[..],
            ]
        );
        assert_eq!(
            raw.seq,
            vec![2, 3, 5],
            "numbered by the line each record ends on"
        );
    }

    #[test]
    fn splitter_handles_partial_lines_crlf_and_blanks() {
        let mut s = LineSplitter::default();
        let mut raw = RawBatch::default();
        s.feed(b"{\"a\":1}\r\n\n{\"a\"", &mut raw);
        s.feed(b":2}\n{\"a\":3}", &mut raw);
        s.finish(&mut raw);
        assert_eq!(raw.len(), 3);
        assert_eq!(raw.record(0), b"{\"a\":1}");
        assert_eq!(raw.record(1), b"{\"a\":2}");
        assert_eq!(raw.record(2), b"{\"a\":3}");
        assert_eq!(raw.seq, vec![1, 3, 4]);
    }
}
