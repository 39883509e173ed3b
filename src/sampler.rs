//! The order of samples in an epoch: a shuffle from (seed, epoch), distributed shards like
//! PyTorch's DistributedSampler, and batching with a resume cursor.

use rand::seq::SliceRandom;

use crate::rng::{rng_for, stream};

/// Settings of the sampler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sampler {
    /// Dataset size.
    pub len: usize,
    /// Shuffle each epoch (else sequential order).
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// This process's rank.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// Drop the tail: in sharding (as DistributedSampler) and the last partial batch.
    pub drop_last: bool,
    /// Without `drop_last`, pad the epoch so that every rank gets the same number of samples (as
    /// DistributedSampler); else every sample goes to exactly one rank (exact distributed
    /// evaluation): the epoch goes in steps of `batch_size x world_size` samples, rank r taking
    /// the r-th `batch_size` of each step (as accelerate's batch sharding), so that ranks differ
    /// only in the last step, by at most one batch.
    pub even: bool,
    /// Without `even`: pad the last step's short batches with repeats of the epoch's first
    /// samples to the size of rank 0's, so that every rank has batches of equal shapes and the
    /// repeats come last in rank order (what accelerate's `gather_for_metrics` cuts off).
    pub pad_tail: bool,
    /// Samples per batch.
    pub batch_size: usize,
    /// Block shuffle: the samples per shard, in order, and the shards per window (see
    /// [`window_order`]); `None`, a full shuffle.
    pub window: Option<Window>,
}

/// A block shuffle's samples per shard, and shards per window.
pub(crate) type Window = (std::sync::Arc<Vec<usize>>, usize);

/// The block shuffle of an epoch, a function of (seed, epoch) alone: the shards permuted, taken
/// `window` at a time, the samples of each window permuted. A reader holds `window` shards at a
/// time, and reads each shard in one window of the epoch.
pub(crate) fn window_order(sizes: &[usize], window: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut starts = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &n in sizes {
        starts.push(at);
        at += n;
    }
    let mut shards: Vec<usize> = (0..sizes.len()).collect();
    shards.shuffle(&mut rng_for(seed, stream::SHUFFLE, epoch, 1));
    let mut order = Vec::with_capacity(at);
    for (w, group) in shards.chunks(window.max(1)).enumerate() {
        let from = order.len();
        for &s in group {
            order.extend(starts[s]..starts[s] + sizes[s]);
        }
        order[from..].shuffle(&mut rng_for(seed, stream::SHUFFLE, epoch, 2 + w as u64));
    }
    order
}

impl Sampler {
    /// The indices this rank sees in `epoch`, in order. Without `drop_last` the epoch is padded
    /// by repeating its first indices so that every rank gets the same count, as
    /// `torch.utils.data.DistributedSampler` (unless not `even`: then each sample once); with
    /// it, the tail is cut instead.
    pub(crate) fn indices(&self, epoch: u64) -> Vec<usize> {
        self.indices_from(epoch, 0)
    }

    /// As [`Sampler::indices`], for the part of the epoch's global order from `start` on: what
    /// is left of an epoch of which `start` samples were delivered over all ranks, shared
    /// among this sampler's ranks (possibly another number of them). With `start` = 0, the
    /// whole epoch.
    pub(crate) fn indices_from(&self, epoch: u64, start: usize) -> Vec<usize> {
        let mut order: Vec<usize> = match (&self.window, self.shuffle) {
            (Some((sizes, w)), true) => window_order(sizes, *w, self.seed, epoch),
            _ => (0..self.len).collect(),
        };
        if self.shuffle && self.window.is_none() {
            order.shuffle(&mut rng_for(self.seed, stream::SHUFFLE, epoch, 0));
        }
        let mut order = order.split_off(start.min(self.len));
        let (n, world) = (order.len(), self.world_size.max(1));
        if world > 1 {
            if !self.drop_last && !self.even {
                return self.step_shard(&order);
            }
            let total = if self.drop_last {
                (n / world) * world
            } else {
                n.div_ceil(world) * world
            };
            if total <= order.len() {
                order.truncate(total);
            } else if !order.is_empty() {
                let mut i = 0;
                while order.len() < total {
                    order.push(order[i]);
                    i += 1;
                }
            }
            order = order.into_iter().skip(self.rank).step_by(world).collect();
        }
        order
    }

    /// This rank's share of `order` in steps of `batch_size x world_size` (see `even`).
    fn step_shard(&self, order: &[usize]) -> Vec<usize> {
        let (n, b) = (order.len(), self.batch_size.max(1));
        let step = b * self.world_size.max(1);
        let mut out = Vec::with_capacity(n.div_ceil(self.world_size.max(1)));
        for s in (0..n).step_by(step) {
            let lo = (s + self.rank * b).min(n);
            let hi = (s + (self.rank + 1) * b).min(n);
            out.extend_from_slice(&order[lo..hi]);
            if self.pad_tail && s + step >= n {
                let want = (n - s).min(b);
                out.extend(order.iter().cycle().take(want - (hi - lo)));
            }
        }
        out
    }

    /// Number of batches per epoch for this rank.
    pub(crate) fn batches_per_epoch(&self) -> usize {
        let n = self.indices_len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Samples per epoch on this rank.
    pub(crate) fn indices_len(&self) -> usize {
        let world = self.world_size.max(1);
        if world == 1 {
            self.len
        } else if self.drop_last {
            self.len / world
        } else if self.even {
            self.len.div_ceil(world)
        } else {
            let b = self.batch_size.max(1);
            let step = b * world;
            let tail = self.len % step;
            let last = if self.pad_tail {
                tail.min(b)
            } else {
                tail.saturating_sub(self.rank * b).min(b)
            };
            (self.len / step) * b + last
        }
    }

    /// The batches of `epoch` from batch number `cursor` on.
    pub(crate) fn batches(&self, epoch: u64, cursor: usize) -> Vec<Vec<usize>> {
        self.batches_of(self.indices(epoch), cursor)
    }

    /// The batches of the rest of `epoch` after global position `start` (see
    /// [`Sampler::indices_from`]).
    pub(crate) fn batches_from(&self, epoch: u64, start: usize) -> Vec<Vec<usize>> {
        self.batches_of(self.indices_from(epoch, start), 0)
    }

    fn batches_of(&self, idx: Vec<usize>, cursor: usize) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = idx.chunks(self.batch_size).map(|c| c.to_vec()).collect();
        if self.drop_last && out.last().is_some_and(|b| b.len() < self.batch_size) {
            out.pop();
        }
        out.into_iter().skip(cursor).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(len: usize, world: usize, rank: usize, drop_last: bool) -> Sampler {
        Sampler {
            len,
            shuffle: true,
            seed: 5,
            rank,
            world_size: world,
            drop_last,
            even: true,
            pad_tail: false,
            batch_size: 4,
            window: None,
        }
    }

    #[test]
    fn window_shuffle_is_a_permutation_that_keeps_shards_in_their_window() {
        let sizes = vec![5, 7, 3, 6, 4, 5];
        let starts = [0, 5, 12, 15, 21, 25];
        let shard_of = |i: usize| starts.iter().rposition(|&s| s <= i).unwrap();
        let a = window_order(&sizes, 2, 9, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..30).collect::<Vec<_>>());
        // A reader never has more than a window's shards open (started and not finished).
        let mut left = sizes.clone();
        let mut open = std::collections::BTreeSet::new();
        for &i in &a {
            let s = shard_of(i);
            open.insert(s);
            assert!(open.len() <= 2, "{open:?} open at once");
            left[s] -= 1;
            if left[s] == 0 {
                open.remove(&s);
            }
        }
        assert_ne!(
            a,
            window_order(&sizes, 2, 9, 1),
            "another epoch, another order"
        );
        assert_eq!(
            a,
            window_order(&sizes, 2, 9, 0),
            "a function of (seed, epoch)"
        );
    }

    #[test]
    fn epoch_is_a_permutation_and_changes_per_epoch() {
        let a = s(100, 1, 0, false).indices(0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(a, s(100, 1, 0, false).indices(1));
    }

    #[test]
    fn shards_partition_like_distributed_sampler() {
        // 10 samples on 3 ranks: padded to 12 (two repeats), 4 each.
        let shards: Vec<Vec<usize>> = (0..3).map(|r| s(10, 3, r, false).indices(2)).collect();
        assert!(shards.iter().all(|x| x.len() == 4));
        let mut all: Vec<usize> = shards.concat();
        all.sort();
        all.dedup();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        // drop_last: 9 samples, disjoint.
        let shards: Vec<Vec<usize>> = (0..3).map(|r| s(10, 3, r, true).indices(2)).collect();
        let mut all: Vec<usize> = shards.concat();
        assert_eq!(all.len(), 9);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 9);
    }

    #[test]
    fn the_rest_of_an_epoch_is_shared_exactly_once_among_any_number_of_ranks() {
        // 4 ranks deliver 2 batches of 4 each (32 samples); 2 or 3 ranks share the other 64.
        let before: Vec<usize> = (0..4)
            .flat_map(|r| s(96, 4, r, false).batches(7, 0)[..2].concat())
            .collect();
        for world in [2, 4, 8] {
            let rest: Vec<Vec<usize>> = (0..world)
                .map(|r| s(96, world, r, false).indices_from(7, 32))
                .collect();
            assert!(rest.iter().all(|x| x.len() == 64 / world));
            let mut all = [before.clone(), rest.concat()].concat();
            all.sort();
            assert_eq!(all, (0..96).collect::<Vec<_>>(), "world {world}");
        }
        // Same topology: the rest is exactly what an uninterrupted run delivers after 2 batches.
        for r in 0..4 {
            let smp = s(96, 4, r, false);
            assert_eq!(smp.batches_from(7, 32), smp.batches(7, 2));
        }
        assert_eq!(
            s(96, 1, 0, false).indices_from(7, 0),
            s(96, 1, 0, false).indices(7)
        );
        assert!(s(96, 2, 1, false).indices_from(7, 96).is_empty());
    }

    #[test]
    fn uneven_shards_deliver_every_sample_once() {
        // 100 samples on 3 ranks in steps of 12: 8 full steps, then 4 for rank 0 alone: 36, 32,
        // 32, nothing repeated or cut; resume positions stay global (the first k batches of
        // every rank are the epoch's first 3 x 4 x k samples).
        let shards: Vec<Sampler> = (0..3)
            .map(|r| Sampler {
                even: false,
                ..s(100, 3, r, false)
            })
            .collect();
        let idx: Vec<Vec<usize>> = shards.iter().map(|x| x.indices(4)).collect();
        assert_eq!(idx.iter().map(Vec::len).collect::<Vec<_>>(), [36, 32, 32]);
        assert_eq!(
            shards.iter().map(Sampler::indices_len).collect::<Vec<_>>(),
            [36, 32, 32]
        );
        assert_eq!(
            shards
                .iter()
                .map(Sampler::batches_per_epoch)
                .collect::<Vec<_>>(),
            [9, 8, 8]
        );
        let mut all = idx.concat();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let first: Vec<usize> = shards
            .iter()
            .flat_map(|x| x.batches(4, 0)[..2].concat())
            .collect();
        let rest: Vec<usize> = shards.iter().flat_map(|x| x.indices_from(4, 24)).collect();
        let mut all = [first, rest].concat();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        // More ranks than samples: the last ranks get none.
        let tiny = Sampler {
            even: false,
            ..s(2, 3, 2, false)
        };
        assert_eq!((tiny.indices(0).len(), tiny.batches_per_epoch()), (0, 0));
    }

    #[test]
    fn a_padded_tail_comes_last_in_rank_order() {
        // 97 samples, 3 ranks, batches of 10: 3 full steps, then 7 samples: 7, 0, 0 unpadded;
        // padded, 7 each, and the last step's batches in rank order are the epoch's last 7
        // samples followed by the 14 repeats (what a gather, cut to 97 % 30 = 7, keeps).
        for (pad, lens) in [(false, [37, 30, 30]), (true, [37, 37, 37])] {
            let shards: Vec<Sampler> = (0..3)
                .map(|r| Sampler {
                    even: false,
                    pad_tail: pad,
                    batch_size: 10,
                    ..s(97, 3, r, false)
                })
                .collect();
            let idx: Vec<Vec<usize>> = shards.iter().map(|x| x.indices(1)).collect();
            assert_eq!(idx.iter().map(Vec::len).collect::<Vec<_>>(), lens);
            assert_eq!(
                shards.iter().map(Sampler::indices_len).collect::<Vec<_>>(),
                lens
            );
            let order = s(97, 1, 0, false).indices(1);
            let last: Vec<usize> = shards
                .iter()
                .flat_map(|x| x.batches(1, 3).concat())
                .collect();
            assert_eq!(last[..7], order[90..]);
            if pad {
                assert_eq!(last[7..], [&order[..7], &order[..7]].concat()[..]);
            }
        }
    }

    #[test]
    fn batches_count_and_cursor() {
        let smp = s(10, 1, 0, false);
        assert_eq!(smp.batches_per_epoch(), 3);
        assert_eq!(smp.batches(0, 0).len(), 3);
        assert_eq!(smp.batches(0, 1), smp.batches(0, 0)[1..].to_vec());
        let smp = s(10, 1, 0, true);
        assert_eq!(smp.batches_per_epoch(), 2);
        assert_eq!(smp.batches(0, 0).len(), 2);
    }
}
