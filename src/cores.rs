//! Spreading CPU-bound work over the machine's cores: a slice is cut into one chunk per
//! core (at most eight), each chunk runs on a scoped thread, and the results come back in
//! chunk order. A panic in a chunk is raised again in the caller.

pub fn split<T: Sync, R: Send>(items: &[T], work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_their_order() {
        let items: Vec<u32> = (0..1000).collect();
        let sums: Vec<u32> = super::split(&items, |part| part.iter().sum());
        assert_eq!(sums.iter().sum::<u32>(), items.iter().sum::<u32>());
        let flat: Vec<u32> = super::split(&items, <[u32]>::to_vec).concat();
        assert_eq!(flat, items);
        assert!(
            super::split(&[] as &[u32], |p| p.len())
                .iter()
                .all(|&n| n == 0)
        );
    }
}
