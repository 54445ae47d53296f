//! A field of a request body as it was sent, for the API's lenient parsers.
//!
//! A request type (`TaskIn`, `ProfileIn`) is a serde struct whose every field is a [`Sent`]:
//! deserializing it never fails on a bad field, so serde does not stop at the first one, and
//! the parser that checks the fields afterwards reports every refused field with its JSON
//! pointer and value. The same struct derives the OpenAPI schema (each field's `value_type`
//! names the shape the parser accepts), so what is documented and what is read cannot drift.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One field as sent: absent, or the JSON value that came (`null` included), checked later by
/// the parser.
#[derive(Default, Debug)]
pub struct Sent {
    value: Option<Value>,
}

impl Sent {
    /// The value as sent; `None` when the field was absent.
    pub fn get(&self) -> Option<&Value> {
        self.value.as_ref()
    }

    /// The value unless absent or `null`, which every optional field treats alike.
    pub fn present(&self) -> Option<&Value> {
        self.value.as_ref().filter(|v| !v.is_null())
    }

    /// Moves the value out (for a nested object, read into its own request type).
    pub fn take(&mut self) -> Option<Value> {
        self.value.take()
    }
}

impl<'de> Deserialize<'de> for Sent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self {
            value: Some(Value::deserialize(deserializer)?),
        })
    }
}
