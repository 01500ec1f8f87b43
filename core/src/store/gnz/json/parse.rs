//! Reading JSON in one pass over the header's bytes: the grammar, strings
//! and numbers, and any value as a `Json`. What the header's structure means
//! (its members, arrays and shapes) is read by `format.rs` on this parser.

use std::borrow::Cow;

use super::{Json, Object};
use crate::error::{Error, Result};

/// Nesting allowed inside a metadata value (serde_json's limit, which the
/// parser had before it kept non-finite numbers).
const MAX_JSON_DEPTH: usize = 127;

fn bad(why: impl Into<String>) -> Error {
    Error::Format(why.into())
}

/// The JSON of a header, read in one pass. What it does not model itself
/// (metadata, unknown members) becomes `Json` values; the grammar is
/// serde_json's plus Python's three non-finite numbers in those values,
/// and the structure around is checked here with the
/// same rules (RFC 8259; strings valid UTF-8 without raw control characters,
/// escapes with paired surrogates; nothing after the top-level value).
pub(crate) struct JsonParser<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

pub(crate) fn syntax(at: usize) -> Error {
    bad(format!("header is not JSON (at byte {at})"))
}

impl<'a> JsonParser<'a> {
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// Skips whitespace, then takes `c` if it comes next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, c: u8) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(syntax(self.i))
        }
    }

    /// After a member or element: true if another follows (`,`), false at
    /// `close`.
    pub(crate) fn next_member(&mut self, close: u8) -> Result<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(syntax(self.i)),
        }
    }

    /// Nothing but whitespace left.
    pub(crate) fn end(&mut self) -> Result<()> {
        self.ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(syntax(self.i))
        }
    }

    /// A member name and its colon.
    pub(crate) fn key(&mut self) -> Result<Cow<'a, str>> {
        self.ws();
        let name = self.string()?;
        self.expect(b':')?;
        Ok(name)
    }

    /// A member name and its colon, as raw bytes when it holds no escape
    /// (compared with known names before being checked as UTF-8).
    pub(crate) fn raw_key(&mut self) -> Result<Cow<'a, [u8]>> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(syntax(self.i));
        }
        let start = self.i + 1;
        let mut i = start;
        while let Some(&c) = self.b.get(i) {
            match c {
                b'"' => {
                    self.i = i + 1;
                    self.expect(b':')?;
                    return Ok(Cow::Borrowed(&self.b[start..i]));
                }
                b'\\' | 0..=0x1f => break,
                _ => i += 1,
            }
        }
        // Escapes (or an error): the general way.
        let name = self.string()?.into_owned();
        self.expect(b':')?;
        Ok(Cow::Owned(name.into_bytes()))
    }

    /// A string at the current byte (after whitespace).
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(syntax(self.i));
        }
        self.i += 1;
        let start = self.i;
        // The common case: no escape, borrowed.
        loop {
            match self.peek() {
                Some(b'"') => {
                    let raw = &self.b[start..self.i];
                    self.i += 1;
                    return std::str::from_utf8(raw)
                        .map(Cow::Borrowed)
                        .map_err(|_| syntax(start));
                }
                Some(b'\\') => break,
                Some(0..=0x1f) | None => return Err(syntax(self.i)),
                Some(_) => self.i += 1,
            }
        }
        let mut out =
            String::from(std::str::from_utf8(&self.b[start..self.i]).map_err(|_| syntax(start))?);
        loop {
            let run = self.i;
            loop {
                match self.peek() {
                    Some(b'"' | b'\\') => break,
                    Some(0..=0x1f) | None => return Err(syntax(self.i)),
                    Some(_) => self.i += 1,
                }
            }
            out.push_str(std::str::from_utf8(&self.b[run..self.i]).map_err(|_| syntax(run))?);
            if self.peek() == Some(b'"') {
                self.i += 1;
                return Ok(Cow::Owned(out));
            }
            // An escape.
            self.i += 1;
            let c = self.peek().ok_or_else(|| syntax(self.i))?;
            self.i += 1;
            match c {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let n = self.hex4()?;
                    let c = match n {
                        0xDC00..=0xDFFF => return Err(syntax(self.i)),
                        0xD800..=0xDBFF => {
                            if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                return Err(syntax(self.i));
                            }
                            self.i += 2;
                            let n2 = self.hex4()?;
                            if !(0xDC00..=0xDFFF).contains(&n2) {
                                return Err(syntax(self.i));
                            }
                            0x1_0000 + ((n - 0xD800) << 10 | (n2 - 0xDC00))
                        }
                        n => n,
                    };
                    out.push(char::from_u32(c).ok_or_else(|| syntax(self.i))?);
                }
                _ => return Err(syntax(self.i)),
            }
        }
    }

    pub(crate) fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| syntax(self.i))?;
        let mut n = 0;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or_else(|| syntax(self.i))?;
            n = n << 4 | v;
        }
        self.i += 4;
        Ok(n)
    }

    /// A number at the current byte: `Some` if it is an integer without
    /// sign, fraction or exponent that fits a `u64`, `None` for any other.
    pub(crate) fn number(&mut self) -> Result<Option<u64>> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut value: Option<u64> = Some(0);
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    value = value
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(u64::from(d - b'0')));
                    self.i += 1;
                }
            }
            _ => return Err(syntax(start)),
        }
        let mut integer = !negative;
        if self.peek() == Some(b'.') {
            self.i += 1;
            integer = false;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(value.filter(|_| integer))
    }

    /// One or more digits.
    pub(crate) fn digits(&mut self) -> Result<()> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        if self.i == start {
            Err(syntax(start))
        } else {
            Ok(())
        }
    }

    /// Any value: JSON, or Python's `NaN`, `Infinity`, `-Infinity`.
    pub(crate) fn any(&mut self) -> Result<Json> {
        self.any_at(0)
    }

    pub(crate) fn any_at(&mut self, depth: usize) -> Result<Json> {
        self.ws();
        let start = self.i;
        let rest = &self.b[start..];
        let word = |w: &str| rest.starts_with(w.as_bytes());
        let nested = |p: &mut Self| {
            p.i += 1;
            if depth >= MAX_JSON_DEPTH {
                Err(bad("header JSON nests too deeply"))
            } else {
                Ok(())
            }
        };
        let (value, len) = match self.peek() {
            Some(b'{') => {
                nested(self)?;
                let mut members = Object::new();
                if !self.eat(b'}') {
                    loop {
                        let name = self.key()?.into_owned();
                        // Of duplicate names the last counts (as in Python).
                        members.insert(name, self.any_at(depth + 1)?);
                        if !self.next_member(b'}')? {
                            break;
                        }
                    }
                }
                return Ok(Json::Object(members));
            }
            Some(b'[') => {
                nested(self)?;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.any_at(depth + 1)?);
                        if !self.next_member(b']')? {
                            break;
                        }
                    }
                }
                return Ok(Json::Array(items));
            }
            Some(b'"') => return Ok(Json::String(self.string()?.into_owned())),
            _ if word("true") => (Json::Bool(true), 4),
            _ if word("false") => (Json::Bool(false), 5),
            _ if word("null") => (Json::Null, 4),
            _ if word("NaN") => (Json::Number("NaN".into()), 3),
            _ if word("Infinity") => (Json::Number("Infinity".into()), 8),
            _ if word("-Infinity") => (Json::Number("-Infinity".into()), 9),
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                let text =
                    std::str::from_utf8(&self.b[start..self.i]).map_err(|_| syntax(start))?;
                return Ok(Json::Number(text.into()));
            }
            _ => return Err(syntax(start)),
        };
        self.i += len;
        Ok(value)
    }
}
