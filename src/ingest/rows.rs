//! Rows read one at a time: a CSV or JSON Lines file is never held whole in memory. Each
//! item is a row's lead or its [`RowError`]; a file that cannot be read at all stops the
//! stream with an [`IngestError`]. The in-memory parsers (`parse_csv_limited`,
//! `parse_jsonl_limited`) collect these same streams, so both share every rule and line
//! number.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use ::csv::{ByteRecord, ReaderBuilder};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::csv::{header_columns, is_blank, read_row, record_line, sniff_delimiter};
use super::headers::{ColumnMap, header_warnings};
use super::jsonl::read_value;
use super::{Column, Ctx, IngestError, ParsedLead, RowError};

/// One row: its lead, or why it was refused.
pub type Row = Result<ParsedLead, RowError>;

/// How rows are checked: the clock, the zone for date-only times, the longest field.
#[derive(Debug, Clone)]
pub struct RowRules {
    pub default_tz: Tz,
    pub now: DateTime<Utc>,
    pub max_len: usize,
}

fn ctx<'a>(source: &'a str, rules: &RowRules) -> Ctx<'a> {
    Ctx {
        source,
        default_tz: rules.default_tz,
        now: rules.now,
        max_len: rules.max_len,
    }
}

/// What is read of a file at most per `read` call (and kept of it at once).
const READ_AHEAD: usize = 256 * 1024;

/// The most distinct JSON keys remembered for header suggestions.
const MAX_KEYS: usize = 10_000;

/// The rows of a file, by extension: `.csv` / `.txt` as CSV, `.jsonl` / `.ndjson` as JSON
/// lines, with `[import.columns]` applied.
pub enum Rows {
    Csv(Box<CsvRows<std::fs::File>>),
    Jsonl(Box<JsonlRows<BufReader<std::fs::File>>>),
}

impl Rows {
    pub fn open(path: &Path, rules: &RowRules, map: &ColumnMap) -> Result<Rows, IngestError> {
        let file = path.display().to_string();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let csv = match ext.as_str() {
            "csv" | "txt" => true,
            "jsonl" | "ndjson" => false,
            _ => return Err(IngestError::UnknownExtension { file }),
        };
        let handle = std::fs::File::open(path).map_err(|error| IngestError::Read {
            file: file.clone(),
            error,
        })?;
        Ok(if csv {
            Rows::Csv(Box::new(CsvRows::open(&file, handle, rules, map)?))
        } else {
            let reader = BufReader::with_capacity(READ_AHEAD, handle);
            Rows::Jsonl(Box::new(JsonlRows::new(&file, reader, rules, map)))
        })
    }

    /// Suggestions for headers (or, once every line was read, JSON keys) close to a field.
    pub fn header_warnings(&self) -> Vec<String> {
        match self {
            Rows::Csv(rows) => rows.header_warnings(),
            Rows::Jsonl(rows) => rows.key_warnings(),
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Row, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Rows::Csv(rows) => rows.next(),
            Rows::Jsonl(rows) => rows.next(),
        }
    }
}

/// The bytes the CSV reader has taken from the file and not yet left behind, from byte
/// `base`: where a record's line number is worked out (blank lines before it are skipped by
/// the reader but counted by us).
#[derive(Default)]
struct Window {
    base: u64,
    bytes: Vec<u8>,
}

/// A reader that keeps a copy of what it reads in the [`Window`].
struct Tee<R> {
    inner: R,
    window: Arc<Mutex<Window>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        window
            .bytes
            .extend_from_slice(out.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// A CSV export, record by record (see `ingest::csv` for the rules).
pub struct CsvRows<R> {
    source: String,
    rules: RowRules,
    columns: Vec<Column>,
    /// The header names as written (before `[import.columns]`).
    headers: Vec<String>,
    map: ColumnMap,
    csv: ::csv::Reader<Tee<BufReader<R>>>,
    window: Arc<Mutex<Window>>,
    record: ByteRecord,
}

impl<R: Read> CsvRows<R> {
    /// Reads up to the header row. Whole-file problems (UTF-16, no `email` column …) are
    /// errors here.
    pub fn open(
        source: &str,
        reader: R,
        rules: &RowRules,
        map: &ColumnMap,
    ) -> Result<Self, IngestError> {
        let read_error = |error| IngestError::Read {
            file: source.to_string(),
            error,
        };
        let mut reader = BufReader::with_capacity(READ_AHEAD, reader);
        let head = reader.fill_buf().map_err(read_error)?;
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err(IngestError::Utf16 {
                file: source.to_string(),
            });
        }
        if head.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        }
        let delimiter = sniff_delimiter(reader.fill_buf().map_err(read_error)?);
        let window = Arc::new(Mutex::new(Window::default()));
        let tee = Tee {
            inner: reader,
            window: Arc::clone(&window),
        };
        let csv = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(64 * 1024)
            .from_reader(tee);
        let mut rows = CsvRows {
            source: source.to_string(),
            rules: rules.clone(),
            columns: Vec::new(),
            headers: Vec::new(),
            map: map.clone(),
            csv,
            window,
            record: ByteRecord::new(),
        };
        rows.read_header()?;
        Ok(rows)
    }

    fn csv_error(&self, e: ::csv::Error) -> IngestError {
        IngestError::Csv {
            file: self.source.clone(),
            message: e.to_string(),
        }
    }

    /// The header: the first record that is not blank.
    fn read_header(&mut self) -> Result<(), IngestError> {
        loop {
            let more = self.csv.read_byte_record(&mut self.record);
            if !more.map_err(|e| self.csv_error(e))? {
                return Err(IngestError::Empty {
                    file: self.source.clone(),
                });
            }
            if !is_blank(&self.record) {
                break;
            }
        }
        let line = self.line_of_record();
        let (columns, headers) = header_columns(&self.source, line, &self.record, &self.map)?;
        self.columns = columns;
        self.headers = headers;
        Ok(())
    }

    /// The line the current record starts on; then forgets the bytes before its end.
    fn line_of_record(&mut self) -> usize {
        let end = self.csv.position().byte();
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let line = match self.record.position() {
            Some(pos) => {
                let from = usize::try_from(pos.byte().saturating_sub(window.base)).unwrap_or(0);
                record_line(
                    window.bytes.get(from..).unwrap_or_default(),
                    usize::try_from(pos.line()).unwrap_or(usize::MAX),
                )
            }
            None => 0,
        };
        let done = usize::try_from(end.saturating_sub(window.base)).unwrap_or(0);
        if done > READ_AHEAD && done <= window.bytes.len() {
            window.bytes.drain(..done);
            window.base = end;
        }
        line
    }

    pub fn header_warnings(&self) -> Vec<String> {
        header_warnings(&self.headers, &self.map)
            .into_iter()
            .map(|w| format!("{}: {w}", self.source))
            .collect()
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Row, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.csv.read_byte_record(&mut self.record) {
                Err(e) => return Some(Err(self.csv_error(e))),
                Ok(false) => return None,
                Ok(true) if is_blank(&self.record) => continue,
                Ok(true) => {}
            }
            let line = self.line_of_record();
            let ctx = ctx(&self.source, &self.rules);
            let row = read_row(&ctx, line, &self.columns, &self.record);
            return Some(Ok(row.map(|lead| ParsedLead { line, lead })));
        }
    }
}

/// JSON lines, line by line (see `ingest::jsonl` for the rules).
pub struct JsonlRows<R> {
    source: String,
    rules: RowRules,
    map: ColumnMap,
    reader: R,
    buf: Vec<u8>,
    line: usize,
    /// Every distinct key as first written (up to [`MAX_KEYS`]), for suggestions.
    keys: Vec<String>,
    seen_keys: HashSet<String>,
}

impl<R: BufRead> JsonlRows<R> {
    pub fn new(source: &str, reader: R, rules: &RowRules, map: &ColumnMap) -> Self {
        JsonlRows {
            source: source.to_string(),
            rules: rules.clone(),
            map: map.clone(),
            reader,
            buf: Vec::new(),
            line: 0,
            keys: Vec::new(),
            seen_keys: HashSet::new(),
        }
    }

    pub fn key_warnings(&self) -> Vec<String> {
        header_warnings(&self.keys, &self.map)
            .into_iter()
            .map(|w| format!("{}: {}", self.source, w.replacen("column", "key", 1)))
            .collect()
    }

    /// Notes the keys, and renames the mapped ones.
    fn remap(&mut self, value: Value) -> Value {
        let object = match value {
            Value::Object(object) => object,
            other => return other,
        };
        for key in object.keys() {
            if self.keys.len() < MAX_KEYS && !self.seen_keys.contains(key) {
                self.seen_keys.insert(key.clone());
                self.keys.push(key.clone());
            }
        }
        if self.map.is_empty() || object.keys().all(|k| self.map.target(k).is_none()) {
            return Value::Object(object);
        }
        Value::Object(
            object
                .into_iter()
                .map(|(k, v)| (self.map.target(&k).map_or(k, str::to_string), v))
                .collect(),
        )
    }
}

impl<R: BufRead> Iterator for JsonlRows<R> {
    type Item = Result<Row, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            let read = match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(read) => read,
                Err(error) => {
                    return Some(Err(IngestError::Read {
                        file: self.source.clone(),
                        error,
                    }));
                }
            };
            if read == 0 {
                return None;
            }
            self.line += 1;
            let line = self.line;
            let mut bytes = self.buf.as_slice();
            if line == 1 {
                if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
                    return Some(Err(IngestError::Utf16 {
                        file: self.source.clone(),
                    }));
                }
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let value = match read_value(&ctx(&self.source, &self.rules), line, bytes) {
                None => continue,
                Some(Err(e)) => return Some(Ok(Err(e))),
                Some(Ok(value)) => value,
            };
            let value = self.remap(value);
            let row = super::json_lead(&ctx(&self.source, &self.rules), line, &value);
            return Some(Ok(row.map(|lead| ParsedLead { line, lead })));
        }
    }
}
