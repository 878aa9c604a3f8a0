//! [`SortedSet`]: the small ordered sets every cluster carries (CIDRs,
//! sources of a security group's rules), stored as one sorted slice.
//!
//! A `BTreeSet` allocates a whole node (eleven slots) for its first element,
//! 368 bytes for an access source, and a plan of a large fleet holds about
//! ten such sets per cluster, most with one element. This set holds exactly
//! its elements, in order and without duplicates, so it iterates, compares,
//! serialises (a sequence) and describes itself in a JSON schema (through
//! `BTreeSet`'s) the same way a `BTreeSet` does. Inserting copies the slice:
//! it is for sets of a few dozen elements, not for growing large ones.
//! Nothing here knows what the elements are.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ordered set of `T` in a boxed sorted slice, without duplicates.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SortedSet<T>(Box<[T]>);

impl<T> SortedSet<T> {
    /// The empty set (allocates nothing).
    pub fn new() -> Self {
        SortedSet(Box::new([]))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements, smallest first.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    pub fn first(&self) -> Option<&T> {
        self.0.first()
    }

    pub fn last(&self) -> Option<&T> {
        self.0.last()
    }

    /// Keeps the elements `keep` holds for.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.retain(keep);
        self.0 = v.into_boxed_slice();
    }
}

impl<T: Ord> SortedSet<T> {
    /// From a vector in any order, with duplicates: sorted, then the first
    /// of equal elements kept (as `BTreeSet` keeps the first inserted).
    fn from_vec(mut v: Vec<T>) -> Self {
        v.sort();
        v.dedup();
        SortedSet(v.into_boxed_slice())
    }

    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.0.binary_search_by(|e| e.borrow().cmp(value)).is_ok()
    }

    /// Adds `value`; false when it was already there (the set is unchanged).
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                let mut v = std::mem::take(&mut self.0).into_vec();
                v.insert(at, value);
                self.0 = v.into_boxed_slice();
                true
            }
        }
    }

    /// Removes `value`; false when it was not there.
    pub fn remove<Q>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.0.binary_search_by(|e| e.borrow().cmp(value)) {
            Ok(at) => {
                let mut v = std::mem::take(&mut self.0).into_vec();
                v.remove(at);
                self.0 = v.into_boxed_slice();
                true
            }
            Err(_) => false,
        }
    }

    /// The elements of `self` not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a SortedSet<T>) -> impl Iterator<Item = &'a T> + 'a {
        self.iter().filter(move |e| !other.contains(*e))
    }

    /// The elements in both, in order.
    pub fn intersection<'a>(&'a self, other: &'a SortedSet<T>) -> impl Iterator<Item = &'a T> + 'a {
        self.iter().filter(move |e| other.contains(*e))
    }

    pub fn is_subset(&self, other: &SortedSet<T>) -> bool {
        self.len() <= other.len() && self.iter().all(|e| other.contains(e))
    }

    pub fn is_superset(&self, other: &SortedSet<T>) -> bool {
        other.is_subset(self)
    }

    pub fn is_disjoint(&self, other: &SortedSet<T>) -> bool {
        !self.iter().any(|e| other.contains(e))
    }
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for SortedSet<T> {
    /// As a `BTreeSet` shows itself: `{a, b}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        SortedSet::from_vec(iter.into_iter().collect())
    }
}

impl<T: Ord> Extend<T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let mut v = std::mem::take(&mut self.0).into_vec();
        let old = v.len();
        v.extend(iter);
        if v.len() == old {
            self.0 = v.into_boxed_slice();
            return;
        }
        // The elements already here come first, so they are the ones kept.
        *self = SortedSet::from_vec(v);
    }
}

impl<'a, T: Ord + Copy + 'a> Extend<&'a T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = &'a T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: Ord> From<Vec<T>> for SortedSet<T> {
    fn from(items: Vec<T>) -> Self {
        SortedSet::from_vec(items)
    }
}

impl<T: Ord> From<BTreeSet<T>> for SortedSet<T> {
    fn from(set: BTreeSet<T>) -> Self {
        // Already sorted and without duplicates.
        SortedSet(set.into_iter().collect())
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SortedSet<T> {
    fn from(items: [T; N]) -> Self {
        SortedSet::from_vec(items.into())
    }
}

impl<T> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Serialize> Serialize for SortedSet<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de, T: Deserialize<'de> + Ord> Deserialize<'de> for SortedSet<T> {
    /// Any sequence, as `BTreeSet` reads one: duplicates folded, in order.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(SortedSet::from_vec)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for SortedSet<T> {
    fn inline_schema() -> bool {
        <BTreeSet<T> as schemars::JsonSchema>::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        <BTreeSet<T> as schemars::JsonSchema>::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        <BTreeSet<T> as schemars::JsonSchema>::schema_id()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeSet<T> as schemars::JsonSchema>::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[u32]) -> SortedSet<u32> {
        items.iter().copied().collect()
    }

    #[test]
    fn holds_what_a_btree_set_holds_in_its_order() {
        let cases: &[&[u32]] = &[&[], &[1], &[3, 1, 2], &[2, 2, 1, 2], &[5, 4, 3, 2, 1, 1]];
        for items in cases {
            let ours = set(items);
            let theirs: BTreeSet<u32> = items.iter().copied().collect();
            assert_eq!(
                ours.iter().collect::<Vec<_>>(),
                theirs.iter().collect::<Vec<_>>()
            );
            assert_eq!(ours.len(), theirs.len());
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
            assert_eq!(SortedSet::from(theirs), ours);
        }
    }

    #[test]
    fn insert_remove_and_extend_keep_it_sorted() {
        let mut s = set(&[2, 4]);
        assert!(s.insert(3));
        assert!(!s.insert(3));
        assert!(s.insert(1));
        assert!(s.insert(5));
        assert_eq!(s, set(&[1, 2, 3, 4, 5]));
        assert!(s.remove(&1));
        assert!(!s.remove(&1));
        s.extend([9, 0, 4]);
        assert_eq!(s, set(&[0, 2, 3, 4, 5, 9]));
        s.retain(|&e| e % 2 == 0);
        assert_eq!(s, set(&[0, 2, 4]));
        assert!(s.contains(&2) && !s.contains(&3));
        assert_eq!((s.first(), s.last()), (Some(&0), Some(&4)));
    }

    #[test]
    fn set_operations_match_btree_set() {
        let (a, b) = (set(&[1, 2, 3, 5]), set(&[2, 3, 4]));
        let (ba, bb): (BTreeSet<u32>, BTreeSet<u32>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        assert!(a.difference(&b).eq(ba.difference(&bb)));
        assert!(a.intersection(&b).eq(ba.intersection(&bb)));
        assert!(set(&[2, 3]).is_subset(&a));
        assert!(!b.is_subset(&a));
        assert!(a.is_superset(&set(&[1, 5])));
        assert!(set(&[7]).is_disjoint(&a));
    }

    #[test]
    fn serde_and_schema_are_a_btree_sets() {
        let s: SortedSet<String> = serde_json::from_str(r#"["b","a","b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["a","b"]"#);
        let t: BTreeSet<String> = serde_json::from_str(r#"["b","a","b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"["a","b"]"#);
        assert_eq!(
            schemars::schema_for!(SortedSet<String>),
            schemars::schema_for!(BTreeSet<String>)
        );
    }
}
