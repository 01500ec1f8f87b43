//! The JSON values of a header that libzmap keeps without interpreting:
//! `metadata` and unknown top-level members.
//!
//! The original writer is Python's `json.dumps`, which writes `NaN`,
//! `Infinity` and `-Infinity` for non-finite floats (a `_FillValue` of NaN
//! is common in netCDF-style metadata), and Python's reader takes them back.
//! serde_json refuses them, so these values have their own small type:
//! numbers are kept as the text the file holds (every digit, and the three
//! non-finite words), written back unchanged.

use std::collections::BTreeMap;

pub(crate) mod parse;
pub(crate) mod write;

/// Members of a JSON object by name: sorted, as the original writer
/// (`sort_keys=True`) writes them; of duplicate names the last one counts.
pub type Object = BTreeMap<String, Json>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number as written: JSON grammar, or `NaN`, `Infinity`,
    /// `-Infinity`.
    Number(Box<str>),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

impl Json {
    /// The value as a `u64`, if it is a number written as one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    }

    /// The member `name`, if this is an object that has one.
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.get(name),
            _ => None,
        }
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Json {
        Json::Number(n.to_string().into())
    }
}

/// Numbers keep their text (the crate enables serde_json's
/// `arbitrary_precision`).
#[cfg(any(test, feature = "test-support"))]
impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Json {
        use serde_json::Value;
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.to_string().into()),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.clone(), Json::from(v))).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_digits_are_u64() {
        assert_eq!(Json::from(7).as_u64(), Some(7));
        for n in ["-1", "1.0", "1e3", "NaN", "18446744073709551616"] {
            assert_eq!(Json::Number(n.into()).as_u64(), None, "{n}");
        }
        assert_eq!(Json::Null.as_u64(), None);
    }
}
