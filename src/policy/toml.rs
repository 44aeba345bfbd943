//! A reader for the TOML subset policies use: TOML 1.0 without floats and dates.
//!
//! A document is either read exactly as TOML 1.0 reads it or refused; what the subset
//! leaves out (floats, infinities, NaN, dates and times, integers beyond 64 bits) is refused
//! with an error saying it is "not supported in policies", never misread. The rules for
//! which tables may be defined or extended where follow the specification as Python's
//! `tomllib` implements it; `tests/policy_toml_differential.rs` checks the two agree.
//!
//! Every value remembers the byte offset where it starts, so the schema can point at the
//! culprit (`policy.toml:3:9: ...`). Positions are offsets into the text given to [`parse`].

use std::collections::HashMap;

/// Files (policies, and files a policy includes) larger than this are refused.
pub(crate) const MAX_INPUT: usize = 1 << 20;
/// Rendered policies larger than this are refused. Larger than [`MAX_INPUT`] so that host
/// variables (at most 128 KiB each) quoted into a small policy can never exceed it.
pub(crate) const MAX_RENDERED: usize = 8 << 20;
/// Arrays and inline tables nested deeper than this, or dotted keys with more parts, are
/// refused: the reader recurses on nesting.
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    String(String),
    Integer(i64),
    Boolean(bool),
    Array(Vec<Item>),
    Table(Table),
}

impl Value {
    /// The type's name for messages: "a string", "an integer", ...
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Boolean(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// A value and the offset where it starts (for a table, where its key or header is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) value: Value,
    pub(crate) at: usize,
}

/// A table: entries in document order, and an index by key once there are enough of them
/// that looking a key up by a scan would cost more than keeping the index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Table {
    entries: Vec<Entry>,
    index: Option<HashMap<String, usize>>,
}

/// Tables with this many entries get an index. Policies are mostly small tables (a mount is
/// three keys), where a scan is cheaper than hashing, and an index costs an allocation
/// and a copy of every key; a large `[env]` still gets constant-time lookups.
const INDEXED_FROM: usize = 16;

/// One `key = value` of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    /// Where the key was written.
    pub(crate) key_at: usize,
    pub(crate) item: Item,
}

impl Table {
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|e| e.key == key),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.position(key).and_then(|i| self.entries.get(i))
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Item> {
        let i = self.position(key)?;
        self.entries.get_mut(i).map(|e| &mut e.item)
    }

    fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Adds an entry; `key` is not in the table yet.
    fn insert(&mut self, key: String, key_at: usize, item: Item) {
        let position = self.entries.len();
        match &mut self.index {
            Some(index) => {
                index.insert(key.clone(), position);
            }
            None if position + 1 >= INDEXED_FROM => {
                let mut index: HashMap<String, usize> = self
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (e.key.clone(), i))
                    .collect();
                index.insert(key.clone(), position);
                self.index = Some(index);
            }
            None => {}
        }
        self.entries.push(Entry { key, key_at, item });
    }
}

/// Why a text was refused, and where: an offset into it. The error of the TOML reader and
/// of the readers of what it reads (policies, seccomp profiles).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TextError {
    pub(crate) at: usize,
    pub(crate) message: String,
}

type Result<T> = std::result::Result<T, TextError>;

/// Fails with `message` at offset `at`.
pub(crate) fn fail<T>(at: usize, message: impl Into<String>) -> std::result::Result<T, TextError> {
    Err(TextError {
        at,
        message: message.into(),
    })
}

/// Reads a whole document.
pub(crate) fn parse(text: &str) -> Result<Table> {
    if text.len() > MAX_RENDERED {
        return fail(0, format!("larger than {MAX_RENDERED} bytes"));
    }
    let mut parser = Parser {
        src: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    parser.document()
}

/// A key as written: its parts and where each starts.
type Key = Vec<(String, usize)>;

fn names(key: &[(String, usize)]) -> Vec<&str> {
    key.iter().map(|(k, _)| k.as_str()).collect()
}

fn dotted(key: &[(String, usize)]) -> String {
    names(key).join(".")
}

const FROZEN: u8 = 1;
const EXPLICIT: u8 = 2;

/// What may still be done to each table, by key path (as the specification's rules on
/// defining tables are implemented by tomllib): `EXPLICIT` tables were defined by a header
/// or by dotted keys in an earlier section, `FROZEN` ones (inline tables, arrays) cannot
/// change at all.
#[derive(Default)]
struct Flags {
    root: FlagNode,
    pending: Vec<(Vec<String>, u8)>,
}

#[derive(Default)]
struct FlagNode {
    flags: u8,
    recursive: u8,
    nested: HashMap<String, FlagNode>,
}

impl Flags {
    fn set(&mut self, key: &[&str], flag: u8, recursive: bool) {
        let mut node = &mut self.root;
        for part in key {
            node = node.nested.entry((*part).to_string()).or_default();
        }
        if recursive {
            node.recursive |= flag;
        } else {
            node.flags |= flag;
        }
    }

    fn is(&self, key: &[&str], flag: u8) -> bool {
        let Some((last, parents)) = key.split_last() else {
            return false;
        };
        let mut node = &self.root;
        for part in parents {
            match node.nested.get(*part) {
                Some(next) if next.recursive & flag != 0 => return true,
                Some(next) => node = next,
                None => return false,
            }
        }
        node.nested
            .get(*last)
            .is_some_and(|n| (n.flags | n.recursive) & flag != 0)
    }

    fn unset_all(&mut self, key: &[&str]) {
        let Some((last, parents)) = key.split_last() else {
            return;
        };
        let mut node = &mut self.root;
        for part in parents {
            match node.nested.get_mut(*part) {
                Some(next) => node = next,
                None => return,
            }
        }
        node.nested.remove(*last);
    }

    fn add_pending(&mut self, key: &[&str], flag: u8) {
        self.pending
            .push((key.iter().map(|k| k.to_string()).collect(), flag));
    }

    fn finalize_pending(&mut self) {
        for (key, flag) in std::mem::take(&mut self.pending) {
            let key: Vec<&str> = key.iter().map(String::as_str).collect();
            self.set(&key, flag, false);
        }
    }
}

/// Walks `key` from `table`, creating missing tables; with `into_arrays`, a key naming an
/// array of tables continues into its last table. Fails where a value that is not a table
/// is in the way.
fn nest<'t>(
    table: &'t mut Table,
    key: &[(String, usize)],
    into_arrays: bool,
) -> Option<&'t mut Table> {
    let mut table = table;
    for (part, at) in key {
        if !table.contains(part) {
            table.insert(
                part.clone(),
                *at,
                Item {
                    value: Value::Table(Table::default()),
                    at: *at,
                },
            );
        }
        let item = table.get_mut(part)?;
        table = match &mut item.value {
            Value::Table(t) => t,
            Value::Array(list) if into_arrays => match list.last_mut() {
                Some(Item {
                    value: Value::Table(t),
                    ..
                }) => t,
                _ => return None,
            },
            _ => return None,
        };
    }
    Some(table)
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    depth: usize,
}

fn is_bare_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// ASCII control characters other than tab (and DEL), which TOML forbids in comments and
/// strings.
fn is_forbidden_control(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.src
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(s))
    }

    /// The length of the newline at the cursor: 1 for LF, 2 for CRLF, 0 for none.
    fn newline(&self) -> usize {
        match (self.peek(), self.peek_at(1)) {
            (Some(b'\n'), _) => 1,
            (Some(b'\r'), Some(b'\n')) => 2,
            _ => 0,
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A comment, if one starts here, up to (not including) the end of the line.
    fn skip_comment(&mut self) -> Result<()> {
        if self.peek() != Some(b'#') {
            return Ok(());
        }
        self.pos += 1;
        while let Some(c) = self.peek() {
            if self.newline() > 0 {
                break;
            }
            if is_forbidden_control(c) {
                return fail(self.pos, format!("control character {c:#04x} in a comment"));
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// Whitespace, newlines and comments, as allowed between array elements.
    fn skip_array_space(&mut self) -> Result<()> {
        loop {
            let start = self.pos;
            self.skip_ws();
            self.pos += self.newline();
            self.skip_comment()?;
            if self.pos == start {
                return Ok(());
            }
        }
    }

    fn document(&mut self) -> Result<Table> {
        let mut root = Table::default();
        let mut flags = Flags::default();
        let mut header: Key = Vec::new();
        loop {
            self.skip_ws();
            let Some(c) = self.peek() else { break };
            let newline = self.newline();
            if newline > 0 {
                self.pos += newline;
                continue;
            }
            if is_bare_key_char(c) || c == b'"' || c == b'\'' {
                self.key_value_statement(&mut root, &mut flags, &header)?;
                self.skip_ws();
            } else if c == b'[' {
                flags.finalize_pending();
                header = if self.peek_at(1) == Some(b'[') {
                    self.array_table_header(&mut root, &mut flags)?
                } else {
                    self.table_header(&mut root, &mut flags)?
                };
                self.skip_ws();
            } else if c != b'#' {
                return fail(self.pos, "expected a key, a [table] header or a comment");
            }
            self.skip_comment()?;
            if self.peek().is_none() {
                break;
            }
            let newline = self.newline();
            if newline == 0 {
                return fail(self.pos, "expected the end of the line after a statement");
            }
            self.pos += newline;
        }
        Ok(root)
    }

    /// The key of a header that opens with `brackets` brackets, and where the header starts.
    fn header_key(&mut self, brackets: usize) -> Result<(usize, Key)> {
        let at = self.pos;
        self.pos += brackets;
        self.skip_ws();
        Ok((at, self.key()?))
    }

    /// `[a.b]`: defines a table, once.
    fn table_header(&mut self, root: &mut Table, flags: &mut Flags) -> Result<Key> {
        let (at, key) = self.header_key(1)?;
        let path = names(&key);
        if flags.is(&path, EXPLICIT) || flags.is(&path, FROZEN) {
            return fail(
                at,
                format!("table [{}] is defined more than once", dotted(&key)),
            );
        }
        flags.set(&path, EXPLICIT, false);
        if nest(root, &key, true).is_none() {
            return fail(
                at,
                format!(
                    "[{}] would replace a value that is not a table",
                    dotted(&key)
                ),
            );
        }
        if self.peek() != Some(b']') {
            return fail(self.pos, "expected ']' at the end of a table header");
        }
        self.pos += 1;
        Ok(key)
    }

    /// `[[a.b]]`: appends a table to an array of tables.
    fn array_table_header(&mut self, root: &mut Table, flags: &mut Flags) -> Result<Key> {
        let (at, key) = self.header_key(2)?;
        let path = names(&key);
        if flags.is(&path, FROZEN) {
            return fail(
                at,
                format!(
                    "[[{}]] would change an array that is already complete",
                    dotted(&key)
                ),
            );
        }
        // A new element: what was defined in the previous one no longer constrains it.
        flags.unset_all(&path);
        flags.set(&path, EXPLICIT, false);
        let Some((last, parents)) = key.split_last() else {
            return fail(at, "empty key");
        };
        let not_array = || {
            format!(
                "[[{}]] would replace a value that is not an array of tables",
                dotted(&key)
            )
        };
        let Some(parent) = nest(root, parents, true) else {
            return fail(at, not_array());
        };
        let table = Item {
            value: Value::Table(Table::default()),
            at: last.1,
        };
        match parent.get_mut(&last.0) {
            Some(Item {
                value: Value::Array(list),
                ..
            }) => list.push(table),
            Some(_) => return fail(at, not_array()),
            None => parent.insert(
                last.0.clone(),
                last.1,
                Item {
                    value: Value::Array(vec![table]),
                    at: last.1,
                },
            ),
        }
        if !self.starts_with(b"]]") {
            return fail(
                self.pos,
                "expected ']]' at the end of an array of tables header",
            );
        }
        self.pos += 2;
        Ok(key)
    }

    /// `key = value` in the section under `header`.
    fn key_value_statement(
        &mut self,
        root: &mut Table,
        flags: &mut Flags,
        header: &Key,
    ) -> Result<()> {
        let at = self.pos;
        let (key, item) = self.key_value()?;
        let mut full: Key = header.clone();
        full.extend(key.iter().cloned());
        let full_path = names(&full);
        // Tables that dotted keys create may be extended by more dotted keys in this section
        // only; headers or later sections cannot define them again.
        for i in header.len() + 1..full.len() {
            if flags.is(&full_path[..i], EXPLICIT) {
                return fail(
                    at,
                    format!(
                        "dotted key {} would redefine table [{}]",
                        dotted(&key),
                        full_path[..i].join(".")
                    ),
                );
            }
            flags.add_pending(&full_path[..i], EXPLICIT);
        }
        let parent_path = &full_path[..full_path.len() - 1];
        if flags.is(parent_path, FROZEN) {
            return fail(
                at,
                format!(
                    "{} cannot be changed after it was defined inline",
                    parent_path.join(".")
                ),
            );
        }
        let (last, parents) = full.split_last().ok_or_else(|| TextError {
            at,
            message: "empty key".into(),
        })?;
        let Some(table) = nest(root, parents, true) else {
            return fail(
                at,
                format!("{} would replace a value that is not a table", dotted(&key)),
            );
        };
        if table.contains(&last.0) {
            return fail(
                at,
                format!("key {} is defined more than once", dotted(&key)),
            );
        }
        if matches!(item.value, Value::Table(_) | Value::Array(_)) {
            flags.set(&full_path, FROZEN, true);
        }
        table.insert(last.0.clone(), last.1, item);
        Ok(())
    }

    fn key_value(&mut self) -> Result<(Key, Item)> {
        let key = self.key()?;
        if self.peek() != Some(b'=') {
            return fail(self.pos, "expected '=' after a key");
        }
        self.pos += 1;
        self.skip_ws();
        let item = self.value()?;
        Ok((key, item))
    }

    /// A possibly dotted key; skips the whitespace after it.
    fn key(&mut self) -> Result<Key> {
        let mut key = vec![self.key_part()?];
        self.skip_ws();
        while self.peek() == Some(b'.') {
            self.pos += 1;
            self.skip_ws();
            key.push(self.key_part()?);
            self.skip_ws();
            if key.len() > MAX_DEPTH {
                return fail(
                    self.pos,
                    format!("keys of more than {MAX_DEPTH} parts are not supported in policies"),
                );
            }
        }
        Ok(key)
    }

    fn key_part(&mut self) -> Result<(String, usize)> {
        let at = self.pos;
        match self.peek() {
            Some(c) if is_bare_key_char(c) => {
                while self.peek().is_some_and(is_bare_key_char) {
                    self.pos += 1;
                }
                Ok((self.text(at, self.pos)?, at))
            }
            Some(b'\'') => Ok((self.literal_string()?, at)),
            Some(b'"') => {
                self.pos += 1;
                Ok((self.basic_string(false, at)?, at))
            }
            _ => fail(at, "expected a key"),
        }
    }

    fn text(&self, start: usize, end: usize) -> Result<String> {
        let bytes = self.src.get(start..end).unwrap_or_default();
        String::from_utf8(bytes.to_vec()).map_err(|_| TextError {
            at: start,
            message: "invalid UTF-8".into(),
        })
    }

    fn value(&mut self) -> Result<Item> {
        let at = self.pos;
        let value = match self.peek() {
            Some(b'"') if self.starts_with(b"\"\"\"") => {
                Value::String(self.multiline_string(false)?)
            }
            Some(b'"') => {
                self.pos += 1;
                Value::String(self.basic_string(false, at)?)
            }
            Some(b'\'') if self.starts_with(b"'''") => Value::String(self.multiline_string(true)?),
            Some(b'\'') => Value::String(self.literal_string()?),
            Some(b't') if self.starts_with(b"true") => {
                self.pos += 4;
                Value::Boolean(true)
            }
            Some(b'f') if self.starts_with(b"false") => {
                self.pos += 5;
                Value::Boolean(false)
            }
            Some(b'[') => self.nested(Parser::array)?,
            Some(b'{') => self.nested(Parser::inline_table)?,
            _ => self.number()?,
        };
        Ok(Item { value, at })
    }

    fn nested(&mut self, parse: fn(&mut Self) -> Result<Value>) -> Result<Value> {
        if self.depth >= MAX_DEPTH {
            return fail(
                self.pos,
                format!("nesting deeper than {MAX_DEPTH} levels is not supported in policies"),
            );
        }
        self.depth += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn array(&mut self) -> Result<Value> {
        let open = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_array_space()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            if self.peek().is_none() {
                return fail(open, "unclosed array");
            }
            items.push(self.value()?);
            self.skip_array_space()?;
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                Some(b',') => self.pos += 1,
                None => return fail(open, "unclosed array"),
                _ => return fail(self.pos, "expected ',' or ']' in an array"),
            }
            self.skip_array_space()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Value::Array(items));
            }
        }
    }

    fn inline_table(&mut self) -> Result<Value> {
        let open = self.pos;
        self.pos += 1;
        let mut table = Table::default();
        let mut flags = Flags::default();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Table(table));
        }
        loop {
            let at = self.pos;
            if self.peek().is_none() {
                return fail(open, "unclosed inline table");
            }
            let (key, item) = self.key_value()?;
            let path = names(&key);
            if flags.is(&path, FROZEN) {
                return fail(
                    at,
                    format!(
                        "{} cannot be changed after it was defined inline",
                        dotted(&key)
                    ),
                );
            }
            let Some((last, parents)) = key.split_last() else {
                return fail(at, "empty key");
            };
            let Some(nest) = nest(&mut table, parents, false) else {
                return fail(
                    at,
                    format!("{} would replace a value that is not a table", dotted(&key)),
                );
            };
            if nest.contains(&last.0) {
                return fail(
                    at,
                    format!("key {} is defined more than once", dotted(&key)),
                );
            }
            let compound = matches!(item.value, Value::Table(_) | Value::Array(_));
            nest.insert(last.0.clone(), last.1, item);
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Table(table));
                }
                Some(b',') => self.pos += 1,
                None => return fail(open, "unclosed inline table"),
                _ => {
                    return fail(
                        self.pos,
                        "expected ',' or '}' in an inline table (which must fit on one line)",
                    );
                }
            }
            if compound {
                flags.set(&path, FROZEN, true);
            }
            self.skip_ws();
        }
    }

    /// A basic string after its opening quote(s) at `open`, or the body of a multi-line one.
    fn basic_string(&mut self, multiline: bool, open: usize) -> Result<String> {
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return fail(open, "unterminated string");
            };
            match c {
                b'"' if !multiline => {
                    self.pos += 1;
                    break;
                }
                b'"' if self.starts_with(b"\"\"\"") => {
                    self.pos += 3;
                    break;
                }
                b'\\' => self.escape(&mut out, multiline)?,
                _ if multiline && self.newline() > 0 => {
                    self.pos += self.newline();
                    out.push(b'\n');
                }
                _ if is_forbidden_control(c) => {
                    return fail(self.pos, format!("control character {c:#04x} in a string"));
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| TextError {
            at: self.pos,
            message: "invalid UTF-8".into(),
        })
    }

    fn escape(&mut self, out: &mut Vec<u8>, multiline: bool) -> Result<()> {
        let at = self.pos;
        self.pos += 1;
        let c = self.peek();
        if multiline && matches!(c, Some(b' ' | b'\t' | b'\n' | b'\r')) {
            // A line-ending backslash: drop it and all whitespace and newlines after it.
            self.skip_ws();
            if self.peek().is_some() && self.newline() == 0 {
                return fail(
                    at,
                    "a backslash in a string must start an escape or end the line",
                );
            }
            while self.newline() > 0 || matches!(self.peek(), Some(b' ' | b'\t')) {
                self.pos += self.newline().max(1);
            }
            return Ok(());
        }
        self.pos += 1;
        let simple = match c {
            Some(b'b') => Some(0x08),
            Some(b't') => Some(b'\t'),
            Some(b'n') => Some(b'\n'),
            Some(b'f') => Some(0x0c),
            Some(b'r') => Some(b'\r'),
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        let digits = match c {
            Some(b'u') => 4,
            Some(b'U') => 8,
            _ => {
                return fail(
                    at,
                    "unknown escape in a string (TOML has \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)",
                );
            }
        };
        let hex = self
            .src
            .get(self.pos..self.pos + digits)
            .unwrap_or_default();
        if hex.len() != digits || !hex.iter().all(u8::is_ascii_hexdigit) {
            return fail(
                at,
                format!(
                    "\\{} needs {digits} hexadecimal digits",
                    c.map_or(' ', char::from)
                ),
            );
        }
        let code = hex.iter().fold(0u32, |n, d| {
            n * 16 + char::from(*d).to_digit(16).unwrap_or(0)
        });
        let ch = char::from_u32(code).ok_or_else(|| TextError {
            at,
            message: format!("escape {code:#x} is not a Unicode scalar value"),
        })?;
        self.pos += digits;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn literal_string(&mut self) -> Result<String> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return fail(start - 1, "unterminated string"),
                Some(b'\'') => break,
                Some(c) if is_forbidden_control(c) => {
                    return fail(self.pos, format!("control character {c:#04x} in a string"));
                }
                Some(_) => self.pos += 1,
            }
        }
        let text = self.text(start, self.pos)?;
        self.pos += 1;
        Ok(text)
    }

    /// `"""..."""` or `'''...'''`; up to two quotes right before the closing ones belong to
    /// the string.
    fn multiline_string(&mut self, literal: bool) -> Result<String> {
        let open = self.pos;
        self.pos += 3;
        self.pos += self.newline();
        let mut text = if literal {
            let mut out = Vec::new();
            loop {
                if self.starts_with(b"'''") {
                    self.pos += 3;
                    break;
                }
                let newline = self.newline();
                match self.peek() {
                    None => return fail(open, "unterminated string"),
                    Some(_) if newline > 0 => {
                        self.pos += newline;
                        out.push(b'\n');
                    }
                    Some(c) if is_forbidden_control(c) => {
                        return fail(self.pos, format!("control character {c:#04x} in a string"));
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            String::from_utf8(out).map_err(|_| TextError {
                at: open,
                message: "invalid UTF-8".into(),
            })?
        } else {
            self.basic_string(true, open)?
        };
        let quote = if literal { '\'' } else { '"' };
        for _ in 0..2 {
            if self.peek() != Some(quote as u8) {
                break;
            }
            self.pos += 1;
            text.push(quote);
        }
        Ok(text)
    }

    /// An integer; floats, infinities, NaN and dates are recognised only to be refused.
    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        let rest = self.src.get(start..).unwrap_or_default();
        let digits = |n: usize| {
            rest.get(..n)
                .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
        };
        if (digits(4) && rest.get(4) == Some(&b'-')) || (digits(2) && rest.get(2) == Some(&b':')) {
            return fail(start, "dates and times are not supported in policies");
        }
        let unsigned = rest
            .strip_prefix(b"+")
            .or_else(|| rest.strip_prefix(b"-"))
            .unwrap_or(rest);
        if unsigned.starts_with(b"inf") || unsigned.starts_with(b"nan") {
            return fail(start, "floats are not supported in policies");
        }
        let (radix, body_start) = match rest {
            [b'0', b'x', ..] => (16, start + 2),
            [b'0', b'o', ..] => (8, start + 2),
            [b'0', b'b', ..] => (2, start + 2),
            _ => (10, start),
        };
        self.pos = body_start;
        let negative = radix == 10 && self.peek() == Some(b'-');
        if radix == 10 && matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        // Digits, with single underscores between them.
        let digits_start = self.pos;
        let mut previous_digit = false;
        while let Some(c) = self.peek() {
            if char::from(c).is_digit(radix) {
                previous_digit = true;
            } else if c == b'_'
                && previous_digit
                && self
                    .peek_at(1)
                    .is_some_and(|n| char::from(n).is_digit(radix))
            {
                previous_digit = false;
            } else {
                break;
            }
            self.pos += 1;
        }
        if self.pos == digits_start {
            return fail(
                start,
                "expected a value (a string, an integer, a boolean, an array or an inline table)",
            );
        }
        let body: String = self
            .src
            .get(digits_start..self.pos)
            .unwrap_or_default()
            .iter()
            .filter(|c| **c != b'_')
            .map(|c| char::from(*c))
            .collect();
        if radix == 10 && body.len() > 1 && body.starts_with('0') {
            // TOML forbids leading zeros; tomllib reads "0" and stops at the next digit.
            return fail(
                digits_start + 1,
                "expected the end of the line after a statement",
            );
        }
        if radix == 10 && matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return fail(start, "floats are not supported in policies");
        }
        let magnitude = u64::from_str_radix(&body, radix).map_err(|_| TextError {
            at: start,
            message: "integers beyond 64 bits are not supported in policies".into(),
        })?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        value.map(Value::Integer).ok_or_else(|| TextError {
            at: start,
            message: "integers beyond 64 bits are not supported in policies".into(),
        })
    }
}

/// Line and column (both from 1, columns in characters) of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.as_bytes().get(..at).unwrap_or_default();
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_small_and_indexed_find_their_keys_and_refuse_duplicates() {
        for count in [1, INDEXED_FROM - 1, INDEXED_FROM, 3 * INDEXED_FROM] {
            let keys: Vec<String> = (0..count).map(|i| format!("k{i} = {i}")).collect();
            let inline = keys.join(", ");
            let text = format!(
                "{}\n[t]\n{}\nu = {{ {inline} }}\n",
                keys.join("\n"),
                keys.join("\n")
            );
            let root = parse(&text).unwrap();
            let Value::Table(t) = &root.get("t").unwrap().item.value else {
                panic!("t is not a table")
            };
            let Value::Table(u) = &t.get("u").unwrap().item.value else {
                panic!("u is not a table")
            };
            for table in [&root, t, u] {
                for i in 0..count {
                    let value = &table.get(&format!("k{i}")).unwrap().item.value;
                    assert_eq!(*value, Value::Integer(i as i64), "{count} keys");
                }
                assert!(table.get("missing").is_none());
            }
            let again = format!("{}\nk{} = 0\n", keys.join("\n"), count - 1);
            let e = parse(&again).unwrap_err();
            assert_eq!(
                e.message,
                format!("key k{} is defined more than once", count - 1)
            );
            let again = format!("u = {{ {inline}, k0 = 1 }}");
            let e = parse(&again).unwrap_err();
            assert_eq!(e.message, "key k0 is defined more than once");
        }
    }
}
