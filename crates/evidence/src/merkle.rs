//! Merkle tree hashing and proofs as RFC 6962 defines them and RFC 9162 §2.1 restates:
//! leaves hash as `SHA-256(0x00 ‖ data)`, interior nodes as `SHA-256(0x01 ‖ left ‖ right)`,
//! and a tree of `n` leaves splits at the largest power of two below `n`.
//!
//! Proof *generation* is written against [`SubtreeHashes`], so the same code serves the
//! SQLite log (which stores every complete perfect subtree) and the in-memory reference used
//! by tests. Proof *verification* needs nothing but hashes, so it runs offline.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: the hash of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Access to the hashes of complete, aligned perfect subtrees: `perfect(level, index)` is the
/// root of leaves `index·2^level .. (index+1)·2^level`.
pub trait SubtreeHashes {
    type Error;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// `MTH(D[start .. start+size])` for a range that starts on a multiple of the largest power of
/// two not above `size`, which is every range the RFC 6962 recursions ask for.
pub fn subtree_root<S: SubtreeHashes>(s: &mut S, start: u64, size: u64) -> Result<Hash, S::Error> {
    debug_assert!(size >= 1);
    if size.is_power_of_two() {
        let level = size.trailing_zeros();
        return s.perfect(level, start >> level);
    }
    let k = split_point(size);
    let left = subtree_root(s, start, k)?;
    let right = subtree_root(s, start + k, size - k)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree holding the first `size` leaves.
pub fn root<S: SubtreeHashes>(s: &mut S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree_root(s, 0, size)
}

/// The audit path for leaf `index` in the tree of the first `size` leaves, bottom-up
/// (RFC 6962 §2.1.1, `PATH(m, D[n])`). Panics in debug builds if `index >= size`.
pub fn inclusion_path<S: SubtreeHashes>(
    s: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    debug_assert!(index < size);
    let mut path = Vec::with_capacity(64 - size.leading_zeros() as usize);
    // Walk down from the root, remembering siblings; the path lists them leaf first.
    let (mut start, mut n, mut m) = (0u64, size, index);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            path.push(subtree_root(s, start + k, n - k)?);
            n = k;
        } else {
            path.push(subtree_root(s, start, k)?);
            start += k;
            m -= k;
            n -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The proof that the tree of `old` leaves is a prefix of the tree of `new` leaves
/// (RFC 6962 §2.1.2, `PROOF(m, D[n])`), for `0 < old <= new`.
pub fn consistency_path<S: SubtreeHashes>(
    s: &mut S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    debug_assert!(0 < old && old <= new);
    let mut proof = Vec::new();
    let (mut start, mut n, mut m, mut whole) = (0u64, new, old, true);
    while m != n {
        let k = split_point(n);
        if m <= k {
            proof.push(subtree_root(s, start + k, n - k)?);
            n = k;
        } else {
            proof.push(subtree_root(s, start, k)?);
            start += k;
            m -= k;
            n -= k;
            whole = false;
        }
    }
    if !whole {
        proof.push(subtree_root(s, start, n)?);
    }
    proof.reverse();
    Ok(proof)
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2). `true` only when `leaf` at `index` is in the
/// tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2) between the tree of `old` leaves with root
/// `old_root` and the tree of `new` leaves with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old == 0 || old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// A whole tree in memory: the reference the tests hold the stored log against, and what
/// an offline verifier rebuilds a small log with.
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    /// `levels[l][i]` is the root of the perfect subtree `(l, i)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut level = 0;
        let mut index = self.levels[0].len() - 1;
        while index % 2 == 1 {
            let parent = node_hash(&self.levels[level][index - 1], &self.levels[level][index]);
            level += 1;
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(parent);
            index /= 2;
        }
    }

    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SubtreeHashes for MemoryTree {
    type Error = std::convert::Infallible;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        Ok(self.levels[level as usize][index as usize])
    }
}

/// The right edge of a tree: the roots of its perfect subtrees, largest first, one per set bit
/// of the size. Enough to append and to compute the root without reading anything back.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)`, levels strictly decreasing.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn load<S: SubtreeHashes>(s: &mut S, size: u64) -> Result<Self, S::Error> {
        let mut peaks = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                peaks.push((level, s.perfect(level, start >> level)?));
                start += 1 << level;
            }
        }
        Ok(Self { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds one leaf; returns the perfect subtrees it completed, `(level, index, hash)`,
    /// starting with the leaf itself at level 0.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut created = vec![(0, self.size, leaf)];
        let mut current = (0u32, leaf);
        let mut index = self.size;
        while let Some(&(level, left)) = self.peaks.last() {
            if level != current.0 {
                break;
            }
            self.peaks.pop();
            let parent = node_hash(&left, &current.1);
            index >>= 1;
            current = (level + 1, parent);
            created.push((level + 1, index, parent));
        }
        self.peaks.push(current);
        self.size += 1;
        created
    }

    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, peak) in iter {
            acc = node_hash(peak, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> Hash {
        leaf_hash(&i.to_le_bytes())
    }

    /// MTH straight from RFC 6962's definition, on a list of leaf hashes.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    fn tree(n: u64) -> (MemoryTree, Vec<Hash>) {
        let mut t = MemoryTree::default();
        let leaves: Vec<Hash> = (0..n).map(leaf).collect();
        for l in &leaves {
            t.push(*l);
        }
        (t, leaves)
    }

    #[test]
    fn known_answers() {
        // The empty tree and a one-leaf tree, by definition.
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn roots_match_the_definition_and_the_frontier() {
        let mut frontier = Frontier::default();
        let (mut t, leaves) = tree(70);
        for n in 0..=70u64 {
            let expected = naive_root(&leaves[..n as usize]);
            assert_eq!(root(&mut t, n).unwrap(), expected, "n={n}");
            assert_eq!(frontier.root(), expected, "frontier n={n}");
            assert_eq!(Frontier::load(&mut t, n).unwrap(), frontier);
            if n < 70 {
                frontier.push(leaves[n as usize]);
            }
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_wrong_one_does() {
        let (mut t, leaves) = tree(40);
        for n in 1..=40u64 {
            let r = root(&mut t, n).unwrap();
            for m in 0..n {
                let path = inclusion_path(&mut t, m, n).unwrap();
                assert!(
                    verify_inclusion(m, n, &leaves[m as usize], &path, &r),
                    "m={m} n={n}"
                );
                // Wrong leaf, wrong index, wrong size, a flipped path byte, a shortened path.
                let other = leaves[((m + 1) % 40) as usize];
                assert!(!verify_inclusion(m, n, &other, &path, &r));
                if n > 1 {
                    assert!(!verify_inclusion(
                        (m + 1) % n,
                        n,
                        &leaves[m as usize],
                        &path,
                        &r
                    ));
                    let mut bad = path.clone();
                    bad[0][7] ^= 1;
                    assert!(!verify_inclusion(m, n, &leaves[m as usize], &bad, &r));
                    assert!(!verify_inclusion(
                        m,
                        n,
                        &leaves[m as usize],
                        &path[..path.len() - 1],
                        &r
                    ));
                }
                // (The size alone is not bound by the path: m=0 of 3 and of 4 share one. The
                // signed tree head binds size and root together.)
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_no_wrong_one_does() {
        let (mut t, _) = tree(40);
        for new in 1..=40u64 {
            let new_root = root(&mut t, new).unwrap();
            for old in 1..=new {
                let old_root = root(&mut t, old).unwrap();
                let proof = consistency_path(&mut t, old, new).unwrap();
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    "old={old} new={new}"
                );
                if old < new {
                    let mut bad_root = old_root;
                    bad_root[0] ^= 1;
                    assert!(!verify_consistency(old, new, &bad_root, &new_root, &proof));
                    assert!(!verify_consistency(old, new, &old_root, &bad_root, &proof));
                    let mut bad = proof.clone();
                    let last = bad.len() - 1;
                    bad[last][31] ^= 1;
                    assert!(!verify_consistency(old, new, &old_root, &new_root, &bad));
                    // A proof for other sizes.
                    if old > 1 {
                        assert!(!verify_consistency(
                            old - 1,
                            new,
                            &old_root,
                            &new_root,
                            &proof
                        ));
                    }
                }
            }
        }
    }

    #[test]
    fn frontier_push_reports_the_subtrees_it_completed() {
        let mut f = Frontier::default();
        let (t, leaves) = tree(16);
        for (i, l) in leaves.iter().enumerate() {
            for (level, index, hash) in f.push(*l) {
                assert_eq!(
                    t.levels[level as usize][index as usize], hash,
                    "after leaf {i}"
                );
            }
        }
        assert_eq!(f.peaks.len(), 1);
    }
}
