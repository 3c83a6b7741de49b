//! The ids of records, one type each, so that one cannot be passed where
//! another is meant (`update_atom_state(flow, atom, ..)` with the two
//! swapped does not compile), and the owner [`Epoch`].
//!
//! Each id is a UUID underneath, stored and serialized as one (the records
//! are unchanged); `Display` and `FromStr` use its hyphenated form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Defines an id type: a UUID newtype with `new` (random), conversions to
/// and from `Uuid`, `Display` and `FromStr`, serialized as the bare UUID.
/// Exported (hidden) so the jobboard's `JobId` is made the same way.
#[doc(hidden)]
#[macro_export]
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, random id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                $name(uuid::Uuid::new_v4())
            }

            /// The id that is this UUID.
            pub const fn from_uuid(uuid: uuid::Uuid) -> Self {
                $name(uuid)
            }

            /// The UUID underneath.
            pub const fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(uuid: uuid::Uuid) -> Self {
                $name(uuid)
            }
        }

        impl From<$name> for uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<uuid::Uuid> for $name {
            fn eq(&self, other: &uuid::Uuid) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for uuid::Uuid {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// The id of a [`LogBook`](crate::LogBook).
    LogBookId
);

uuid_id!(
    /// The id of a [`FlowDetail`](crate::FlowDetail).
    ///
    /// ```
    /// use taskflow_persistence::FlowDetailId;
    /// let id = FlowDetailId::new();
    /// assert_eq!(id.to_string().parse::<FlowDetailId>().unwrap(), id);
    /// ```
    FlowDetailId
);

uuid_id!(
    /// The id of an [`AtomDetail`](crate::AtomDetail).
    AtomDetailId
);

/// The epoch of a flow detail's owner: each claim of a job (or take of a
/// flow detail) holds a higher one, and a write presenting an epoch lower
/// than the stored one is refused (see [`Backend`](crate::Backend), "Owner
/// fencing"). [`Epoch::ZERO`] means never claimed.
///
/// ```
/// use taskflow_persistence::Epoch;
/// assert!(Epoch::ZERO.next() > Epoch::ZERO);
/// assert_eq!(Epoch::new(7).get(), 7);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(u64);

impl Epoch {
    /// Never claimed.
    pub const ZERO: Epoch = Epoch(0);

    /// The epoch numbered `n`.
    pub const fn new(n: u64) -> Self {
        Epoch(n)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The epoch after this one (saturating at the largest).
    pub const fn next(self) -> Self {
        Epoch(self.0.saturating_add(1))
    }
}

impl From<u64> for Epoch {
    fn from(n: u64) -> Self {
        Epoch(n)
    }
}

/// The epoch `n` after (saturating at the largest).
impl std::ops::Add<u64> for Epoch {
    type Output = Epoch;

    fn add(self, n: u64) -> Epoch {
        Epoch(self.0.saturating_add(n))
    }
}

impl PartialEq<u64> for Epoch {
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Epoch> for u64 {
    fn eq(&self, other: &Epoch) -> bool {
        *self == other.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Epoch {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Epoch)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn ids_serialize_as_bare_uuids() {
        let uuid = Uuid::new_v4();
        let id = AtomDetailId::from(uuid);
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::json!(uuid.to_string())
        );
        assert_eq!(
            serde_json::from_value::<AtomDetailId>(serde_json::json!(uuid.to_string())).unwrap(),
            id
        );
        assert_eq!(serde_json::to_value(Epoch::new(3)).unwrap(), 3);
        assert!("not-a-uuid".parse::<LogBookId>().is_err());
    }
}
