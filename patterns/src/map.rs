//! [`VecMap`]: the small sorted map an atom's argument bindings live in.
//!
//! An atom binds a handful of arguments at most, and a flow may hold
//! hundreds of thousands of atoms. A `BTreeMap` allocates a whole node
//! (about 540 bytes for `String` to `String`) for its first entry; a
//! `VecMap` holds exactly its entries in one boxed slice, sorted by key, and
//! nothing at all when empty. Lookups are binary searches; inserting costs a
//! reallocation, which is fine at this size. It serializes as a map, in key
//! order, as a `BTreeMap` does, so stored definitions read either way.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A small map kept as one sorted boxed slice: no allocation when empty,
/// exactly its entries otherwise, iterated in key order.
///
/// ```
/// use taskflow_patterns::VecMap;
/// let mut map: VecMap<String, String> = [("b".to_owned(), "2".to_owned())].into();
/// map.insert("a".to_owned(), "1".to_owned());
/// assert_eq!(map.get("a").map(String::as_str), Some("1"));
/// assert_eq!(map.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "b"]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VecMap<K, V> {
    entries: Box<[(K, V)]>,
}

impl<K, V> VecMap<K, V> {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        VecMap {
            entries: Box::default(),
        }
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in key order.
    pub fn iter(&self) -> VecMapIter<'_, K, V> {
        VecMapIter(self.entries.iter())
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values, in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The entries as a slice of pairs, in key order.
    pub fn as_slice(&self) -> &[(K, V)] {
        &self.entries
    }
}

impl<K: Ord, V> VecMap<K, V> {
    fn position<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// Where `key` is, if present. A map of a few entries (an atom's
    /// rebinds, most often one) is scanned for an equal key, which for
    /// names compares lengths before bytes; a larger one is searched.
    fn find<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if self.entries.len() <= 4 {
            self.entries.iter().position(|(k, _)| k.borrow() == key)
        } else {
            self.position(key).ok()
        }
    }

    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).map(|i| &self.entries[i].1)
    }

    /// The value under `key`, to change.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).is_some()
    }

    /// Stores `value` under `key`, returning the value it replaces (the key
    /// already present is kept, as a `BTreeMap` does).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                let mut entries = std::mem::take(&mut self.entries).into_vec();
                entries.reserve_exact(1);
                entries.insert(i, (key, value));
                self.entries = entries.into_boxed_slice();
                None
            }
        }
    }

    /// Takes the value under `key` out of the map.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.find(key)?;
        let mut entries = std::mem::take(&mut self.entries).into_vec();
        let (_, value) = entries.remove(i);
        self.entries = entries.into_boxed_slice();
        Some(value)
    }

    /// Sorts `entries` by key; of equal keys the last value wins (under the
    /// first key), as when inserting them one by one.
    fn from_vec(mut entries: Vec<(K, V)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        VecMap {
            entries: entries.into_boxed_slice(),
        }
    }
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        VecMap::from_vec(iter.into_iter().collect())
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for VecMap<K, V> {
    fn from(entries: [(K, V); N]) -> Self {
        VecMap::from_vec(Vec::from(entries))
    }
}

impl<K: Ord, V> From<std::collections::BTreeMap<K, V>> for VecMap<K, V> {
    fn from(map: std::collections::BTreeMap<K, V>) -> Self {
        // Already sorted and unique.
        VecMap {
            entries: map.into_iter().collect(),
        }
    }
}

impl<K: Ord, V> Extend<(K, V)> for VecMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let mut entries = std::mem::take(&mut self.entries).into_vec();
        entries.extend(iter);
        *self = VecMap::from_vec(entries);
    }
}

/// The entries of a [`VecMap`], by reference, in key order.
#[derive(Clone, Debug)]
pub struct VecMapIter<'a, K, V>(std::slice::Iter<'a, (K, V)>);

impl<'a, K, V> Iterator for VecMapIter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for VecMapIter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<K, V> ExactSizeIterator for VecMapIter<'_, K, V> {}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = VecMapIter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_vec().into_iter()
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, K, V> Deserialize<'de> for VecMap<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
        where
            K: Deserialize<'de> + Ord,
            V: Deserialize<'de>,
        {
            type Value = VecMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                // The hint comes from the input: trust it only so far.
                let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = access.next_entry()? {
                    entries.push(entry);
                }
                Ok(VecMap::from_vec(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn keeps_keys_sorted_and_unique() {
        let mut map = VecMap::new();
        assert!(map.is_empty());
        assert_eq!(map.insert("b", 2), None);
        assert_eq!(map.insert("a", 1), None);
        assert_eq!(map.insert("c", 3), None);
        assert_eq!(map.insert("b", 20), Some(2));
        assert_eq!(map.len(), 3);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(map.get("b"), Some(&20));
        assert!(map.contains_key("c"));
        assert!(!map.contains_key("z"));
        assert_eq!(map.remove("a"), Some(1));
        assert_eq!(map.remove("a"), None);
        assert_eq!(map.iter().collect::<Vec<_>>(), [(&"b", &20), (&"c", &3)]);
    }

    /// Small maps are scanned and larger ones searched: both find what a
    /// `BTreeMap` finds, at every size around the switch.
    #[test]
    fn lookups_agree_with_a_btree_map_at_every_size() {
        for n in 0..10 {
            let names: Vec<String> = (0..n).map(|i| format!("k{}", 7 * i % 10)).collect();
            let mut map: VecMap<String, usize> = names.iter().cloned().zip(0..).collect();
            let mut btree: BTreeMap<String, usize> = names.iter().cloned().zip(0..).collect();
            for probe in (0..12).map(|i| format!("k{i}")) {
                assert_eq!(map.get(probe.as_str()), btree.get(&probe), "n={n} {probe}");
                assert_eq!(map.contains_key(probe.as_str()), btree.contains_key(&probe));
                if let Some(v) = map.get_mut(probe.as_str()) {
                    *v += 100;
                    *btree.get_mut(&probe).unwrap() += 100;
                }
            }
            assert!(map.iter().eq(btree.iter()), "n={n}");
            for probe in (0..12).map(|i| format!("k{i}")) {
                assert_eq!(
                    map.remove(probe.as_str()),
                    btree.remove(&probe),
                    "n={n} {probe}"
                );
            }
            assert!(map.is_empty());
        }
    }

    #[test]
    fn building_matches_inserting_one_by_one() {
        let pairs = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)];
        let built: VecMap<_, _> = pairs.into_iter().collect();
        let mut inserted = VecMap::new();
        let mut btree = BTreeMap::new();
        for (k, v) in pairs {
            inserted.insert(k, v);
            btree.insert(k, v);
        }
        assert_eq!(built, inserted);
        assert_eq!(built, VecMap::from(pairs));
        assert_eq!(built, VecMap::from(btree.clone()));
        assert!(built.iter().eq(btree.iter()));
        let mut extended = VecMap::from([("z", 0)]);
        extended.extend(pairs);
        assert_eq!(extended.len(), 4);
        assert_eq!(extended.get("a"), Some(&5));
    }

    #[test]
    fn serializes_as_a_btree_map_does() {
        let btree: BTreeMap<String, String> =
            [("y".into(), "2".into()), ("x".into(), "1".into())].into();
        let map = VecMap::from(btree.clone());
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, serde_json::to_string(&btree).unwrap());
        let back: VecMap<String, String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
        let unsorted: VecMap<String, serde_json::Value> =
            serde_json::from_value(json!({"b": 1, "a": [2]})).unwrap();
        assert_eq!(unsorted.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(serde_json::from_value::<VecMap<String, String>>(json!([1])).is_err());
        assert_eq!(format!("{map:?}"), r#"{"x": "1", "y": "2"}"#);
    }
}
