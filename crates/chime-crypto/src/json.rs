//! Applying a function to the string values at a set of JSON pointers, in a parsed document
//! ([`serde_json::Value`]) or in JSON bytes.
//!
//! The bytes form keeps object members in their order: an event payload must come back from
//! the outbox byte for byte as it went in (the store contract checks it), and `Value` (without
//! serde_json's `preserve_order`, which would change every map in the workspace) sorts keys. A
//! compact document written by serde_json round-trips through [`Node`] to the same bytes.
//! Bytes that are not JSON, and documents in which nothing changed, are never re-serialised.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::Result;

/// `f(pointer, value)` returns the new value of a string field, or `None` to keep it.
pub type FieldFn<'a> = dyn FnMut(&str, &str) -> Result<Option<String>> + 'a;

/// Applies `f` to each string at `pointers` in `doc` (absent fields, nulls and non-strings are
/// left alone). Returns whether anything changed.
pub fn map_value(doc: &mut Value, pointers: &[&str], f: &mut FieldFn<'_>) -> Result<bool> {
    let mut changed = false;
    for pointer in pointers {
        if let Some(Value::String(s)) = doc.pointer_mut(pointer) {
            if let Some(new) = f(pointer, s)? {
                *s = new;
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// Applies `f` to each string at `pointers` in the JSON document `bytes`. `Ok(None)` when
/// nothing changed (or `bytes` is not JSON): the caller keeps the original bytes.
pub fn map_bytes(bytes: &[u8], pointers: &[&str], f: &mut FieldFn<'_>) -> Result<Option<Vec<u8>>> {
    let Ok(mut node) = serde_json::from_slice::<Node>(bytes) else {
        return Ok(None);
    };
    let mut changed = false;
    for pointer in pointers {
        if let Some(Node::String(s)) = node.pointer_mut(pointer) {
            if let Some(new) = f(pointer, s)? {
                *s = new;
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    serde_json::to_vec(&node)
        .map(Some)
        .map_err(|_| crate::Error::Malformed("a document could not be serialised again"))
}

/// A JSON document that keeps object members in order.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// RFC 6901, like [`Value::pointer_mut`].
    fn pointer_mut(&mut self, pointer: &str) -> Option<&mut Node> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/')
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .try_fold(self, |node, token| match node {
                // A repeated member: the last one wins, as serde_json's `Value` would read it.
                Node::Object(members) => members
                    .iter_mut()
                    .rev()
                    .find(|(k, _)| *k == token)
                    .map(|(_, v)| v),
                Node::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            })
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Number(n) => n.serialize(s),
            Node::String(v) => s.serialize_str(v),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Node, E> {
        serde_json::Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            members.push((k, v));
        }
        Ok(Node::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(_: &str, s: &str) -> Result<Option<String>> {
        Ok(Some(s.to_uppercase()))
    }

    #[test]
    fn a_compact_document_round_trips_byte_for_byte_with_its_member_order() {
        let bytes = r#"{"type":"task_created","zeta":1.5,"alpha":[1,-2,{"b":null,"a":true}],"task":{"notify":{"sms":null,"email":"a@example.com"}},"text":"café \"q\" \\ \n \u0001","big":18446744073709551615,"neg":-9223372036854775808,"f":1e-7}"#.as_bytes();
        let node: Node = serde_json::from_slice(bytes).expect("parse");
        let text = serde_json::to_vec(&node).expect("serialise");
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(bytes)
        );
        let changed = map_bytes(
            bytes,
            &["/task/notify/email", "/task/notify/sms"],
            &mut upper,
        )
        .expect("map")
        .expect("changed");
        let text = String::from_utf8(changed).expect("utf-8");
        assert!(
            text.starts_with(r#"{"type":"task_created","zeta":1.5,"alpha":[1,-2,{"b":null,"a":true}],"task":{"notify":{"sms":null,"email":"A@EXAMPLE.COM"}}"#),
            "{text}"
        );
    }

    #[test]
    fn bytes_that_are_not_json_or_have_no_such_field_are_left_alone() {
        for bytes in [&b"\xff\x00 not json"[..], b"42", br#"{"task":{}}"#, b""] {
            assert_eq!(
                map_bytes(bytes, &["/task/notify/email"], &mut upper).expect("map"),
                None
            );
        }
    }

    #[test]
    fn pointers_reach_nested_members_and_array_items_and_skip_non_strings() {
        let mut doc = serde_json::json!({
            "a/b": {"~x": "v"}, "list": ["p", "q"], "n": 1, "z": null
        });
        let changed = map_value(
            &mut doc,
            &["/a~1b/~0x", "/list/1", "/n", "/z", "/missing"],
            &mut upper,
        )
        .expect("map");
        assert!(changed);
        assert_eq!(
            doc,
            serde_json::json!({"a/b": {"~x": "V"}, "list": ["p", "Q"], "n": 1, "z": null})
        );
    }
}
