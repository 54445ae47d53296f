//! Reads a request body into a `serde_json::Value`, refusing an object with the same key twice.
//!
//! `serde_json` keeps the last of duplicate keys, so `{"startDate": "bad", "startDate":
//! "2030-…"}` would pass as if the first were not there, while another parser (a proxy, an
//! audit log, a client's own check) may read the first. RFC 8259 leaves duplicates to the
//! implementation; refusing them makes every reader agree on what was sent.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body was refused: the JSON pointer of the offending member (empty for the whole
/// body) and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub pointer: String,
    pub detail: String,
}

/// Parses `bytes` as JSON, refusing duplicate keys (naming the first one, by pointer).
pub fn parse(bytes: &[u8]) -> Result<Value, Refused> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict {
        pointer: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    parsed.map_err(|e| match duplicate.into_inner() {
        Some((pointer, key)) => Refused {
            pointer,
            detail: format!("the key `{key}` appears more than once in its object"),
        },
        None => Refused {
            pointer: String::new(),
            detail: format!("the body is not valid JSON: {e}"),
        },
    })
}

/// A value at `pointer`; records the first duplicate key met in `duplicate`.
struct Strict<'a> {
    pointer: String,
    duplicate: &'a RefCell<Option<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// RFC 6901: `~` and `/` in a key are escaped.
fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict {
            pointer: format!("{}/{}", self.pointer, items.len()),
            duplicate: self.duplicate,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let pointer = child(&self.pointer, &key);
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some((pointer, key.clone()));
                return Err(A::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(Strict {
                pointer,
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_body_without_duplicates_reads_as_serde_json_reads_it() {
        let text = br#"{"a": [1, 2.5, "x", null, true, {"b": {}}], "c/d~": -3, "e": 18446744073709551615}"#;
        let expected: Value = serde_json::from_slice(text).expect("valid");
        assert_eq!(parse(text), Ok(expected));
    }

    #[test]
    fn a_duplicate_key_is_refused_by_its_pointer_even_when_nested() {
        let refused = parse(br#"{"startDate": "bad", "startDate": "2030-01-01T00:00:00Z"}"#)
            .expect_err("refused");
        assert_eq!(refused.pointer, "/startDate");
        assert!(refused.detail.contains("`startDate`"), "{refused:?}");
        let refused = parse(br#"{"repeats": [{"a/b": 1, "a/b": 2}]}"#).expect_err("refused");
        assert_eq!(refused.pointer, "/repeats/0/a~1b");
    }

    #[test]
    fn invalid_json_is_refused_for_the_whole_body() {
        let refused = parse(b"{\"a\": ").expect_err("refused");
        assert_eq!(refused.pointer, "");
        assert!(refused.detail.starts_with("the body is not valid JSON"));
        assert!(parse(b"{} x").is_err(), "trailing characters");
        assert_eq!(parse(b" [] "), Ok(json!([])));
    }
}
