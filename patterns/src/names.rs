//! [`Names`]: the list of names an atom requires.
//!
//! Most atoms require one argument or none, and a flow may hold hundreds of
//! thousands of atoms. A `Vec<Name>` puts even a single name in a heap block
//! of its own (24 bytes, 32 with malloc's header); `Names` holds one name
//! inline, in the space the vector's pointer, length and capacity took, and
//! more than one in a boxed slice of exactly their number.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Name;

/// An ordered list of names, one held inline, more on the heap; read it as
/// a slice (`&[Name]`).
///
/// ```
/// use taskflow_patterns::{Name, Names};
/// let mut names: Names = ["x"].into_iter().map(Name::from).collect();
/// assert_eq!(names, ["x"]);
/// names.push(Name::from("y"));
/// assert_eq!(names.join(", "), "x, y");
/// assert_eq!(std::mem::size_of::<Names>(), std::mem::size_of::<Vec<Name>>());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Names(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// Exactly one name.
    One(Name),
    /// None (an empty box allocates nothing), or two and more.
    Many(Box<[Name]>),
}

impl Names {
    /// No names (allocates nothing).
    pub fn new() -> Self {
        Names(Repr::Many(Box::default()))
    }

    /// Appends `name` (the names are not deduplicated here: the atom's
    /// builder does that). The first is held inline, without allocating.
    pub fn push(&mut self, name: Name) {
        *self = match std::mem::take(self).0 {
            Repr::Many(names) if names.is_empty() => Names(Repr::One(name)),
            Repr::One(first) => Names(Repr::Many(Box::new([first, name]))),
            Repr::Many(names) => {
                let mut all = names.into_vec();
                // One more, exactly: boxing the vector then takes no shrink.
                all.reserve_exact(1);
                all.push(name);
                Names(Repr::Many(all.into_boxed_slice()))
            }
        };
    }

    /// The names as a vector.
    pub fn into_vec(self) -> Vec<Name> {
        match self.0 {
            Repr::One(name) => vec![name],
            Repr::Many(names) => names.into_vec(),
        }
    }
}

impl Default for Names {
    fn default() -> Self {
        Names::new()
    }
}

impl Deref for Names {
    type Target = [Name];

    fn deref(&self) -> &[Name] {
        match &self.0 {
            Repr::One(name) => std::slice::from_ref(name),
            Repr::Many(names) => names,
        }
    }
}

impl From<Vec<Name>> for Names {
    fn from(mut names: Vec<Name>) -> Self {
        if names.len() == 1 {
            if let Some(name) = names.pop() {
                return Names(Repr::One(name));
            }
        }
        Names(Repr::Many(names.into_boxed_slice()))
    }
}

impl From<Names> for Vec<Name> {
    fn from(names: Names) -> Self {
        names.into_vec()
    }
}

impl FromIterator<Name> for Names {
    fn from_iter<I: IntoIterator<Item = Name>>(iter: I) -> Self {
        Names::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Names {
    type Item = &'a Name;
    type IntoIter = std::slice::Iter<'a, Name>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Names {
    type Item = Name;
    type IntoIter = std::vec::IntoIter<Name>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<S, const N: usize> PartialEq<[S; N]> for Names
where
    Name: PartialEq<S>,
{
    fn eq(&self, other: &[S; N]) -> bool {
        self[..] == other[..]
    }
}

impl<S> PartialEq<Vec<S>> for Names
where
    Name: PartialEq<S>,
{
    fn eq(&self, other: &Vec<S>) -> bool {
        self[..] == other[..]
    }
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Names {
    /// As a sequence, as `Vec<Name>` serializes.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Name>::deserialize(deserializer).map(Names::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One name is held without a heap block of the list's own, and the
    /// list is no larger than a vector.
    #[test]
    fn one_name_is_inline_and_the_list_is_a_vectors_size() {
        assert_eq!(size_of::<Names>(), size_of::<Vec<Name>>());
        let one: Names = vec![Name::from("x")].into();
        assert!(matches!(one.0, Repr::One(_)));
        assert_eq!(one, ["x"]);
        let none = Names::new();
        assert!(none.is_empty());
        assert_eq!(none, Vec::<Name>::new());
    }

    #[test]
    fn pushes_keep_order_across_the_inline_and_boxed_forms() {
        let mut names = Names::new();
        for n in ["a", "b", "c"] {
            names.push(Name::from(n));
        }
        assert_eq!(names, ["a", "b", "c"]);
        assert!(matches!(names.0, Repr::Many(_)));
        assert_eq!(names.clone().into_vec(), ["a", "b", "c"]);
        assert_eq!(names.iter().count(), 3);
        let moved = names.clone().into_iter();
        assert_eq!(moved.len(), 3);
        assert_eq!(moved.collect::<Vec<_>>(), ["a", "b", "c"]);
        let mut one = Names::from(vec![Name::from("x")]).into_iter();
        assert_eq!(
            (one.len(), one.next(), one.next()),
            (1, Some(Name::from("x")), None)
        );
        assert_eq!(format!("{names:?}"), r#"["a", "b", "c"]"#);
    }

    #[test]
    fn serializes_as_a_sequence_both_ways() {
        let names: Names = ["x", "y"].into_iter().map(Name::from).collect();
        let json = serde_json::to_string(&names).unwrap();
        assert_eq!(json, r#"["x","y"]"#);
        let back: Names = serde_json::from_str(&json).unwrap();
        assert_eq!(back, names);
        let one: Names = serde_json::from_str(r#"["x"]"#).unwrap();
        assert!(matches!(one.0, Repr::One(_)));
        let err = serde_json::from_str::<Names>(r#"{"x": 1}"#).unwrap_err();
        assert!(err.to_string().contains("sequence"), "{err}");
    }
}
