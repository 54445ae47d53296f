//! Prefixed identifiers (`tsk_…`, `ntf_…`): time-ordered (UUIDv7) so that cursor pagination
//! by id is pagination by creation, and prefixed so that an id pasted in the wrong place is
//! refused instead of silently matching nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(uuid::Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, ordered after every id made earlier by this process.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let rest = s
                    .strip_prefix($prefix)
                    .and_then(|r| r.strip_prefix('_'))
                    .ok_or(IdError { expected: $prefix })?;
                if rest.len() != 32 {
                    return Err(IdError { expected: $prefix });
                }
                uuid::Uuid::try_parse(rest)
                    .map(Self)
                    .map_err(|_| IdError { expected: $prefix })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(TaskId, "tsk", "A task, assigned by the definition role.");
prefixed_id!(
    NotificationId,
    "ntf",
    "An in-app notification in a user's inbox."
);

/// An id string that is not of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id: expected `{expected}_` followed by 32 hex digits")]
pub struct IdError {
    expected: &'static str,
}

/// The user who owns tasks: the `sub` claim (or configured claim) of their token.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Longest user id accepted; identity providers' subjects are far shorter.
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<Self, UserIdError> {
        if s.is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return Err(UserIdError);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a user id is 1 to 255 characters without control characters")]
pub struct UserIdError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_id_round_trips_through_its_string_form() {
        let id = TaskId::new();
        let parsed: TaskId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
        assert!(id.to_string().starts_with("tsk_"));
    }

    #[test]
    fn an_id_of_another_kind_is_refused() {
        let id = NotificationId::new().to_string();
        assert!(id.parse::<TaskId>().is_err());
        assert!("tsk_xyz".parse::<TaskId>().is_err());
    }

    #[test]
    fn ids_made_later_sort_later() {
        let a = TaskId::new();
        let b = TaskId::new();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }
}
