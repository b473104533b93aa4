//! A bound on the file content that transfers hold in memory at once.
//!
//! An upload below the multipart threshold reads its file whole, a copy
//! between buckets holds the object, and a multipart transfer keeps several
//! parts in flight. With `concurrency` transfers of files up to 16 MiB at
//! once, that was hundreds of MiB at the peak of a large restore, and
//! glibc kept much of it resident after it was freed. Every transfer now
//! first holds its bytes from one budget, and waits while the budget is
//! spent; small files, the bulk of a restore, hold little and rarely wait.

use tokio::sync::{Semaphore, SemaphorePermit};

/// Bytes of file content the transfers may hold at once.
#[derive(Debug)]
pub struct MemoryBudget {
    bytes: Semaphore,
    total: u32,
}

/// Bytes held from a [`MemoryBudget`], given back when dropped.
pub type Held<'a> = SemaphorePermit<'a>;

impl MemoryBudget {
    /// A budget of `mib` MiB (at least 1, at most 4 GiB − 1 byte).
    pub fn new(mib: u32) -> MemoryBudget {
        let total = (u64::from(mib.max(1)) << 20).min(u64::from(u32::MAX)) as u32;
        MemoryBudget {
            bytes: Semaphore::new(total as usize),
            total,
        }
    }

    /// Waits until `bytes` can be held, and holds them. A transfer larger
    /// than the whole budget holds all of it, so it runs alone instead of
    /// never.
    pub async fn hold(&self, bytes: u64) -> Held<'_> {
        let wanted = bytes.min(u64::from(self.total)) as u32;
        self.bytes
            .acquire_many(wanted)
            .await
            .expect("the budget's semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(work: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(work)
    }

    #[test]
    fn bytes_are_given_back_when_the_holder_is_dropped() {
        let budget = MemoryBudget::new(1);
        let first = run(budget.hold(700 << 10));
        assert!(budget.bytes.try_acquire_many(400 << 10).is_err());
        drop(first);
        assert!(budget.bytes.try_acquire_many(400 << 10).is_ok());
    }

    #[test]
    fn a_transfer_larger_than_the_budget_holds_all_of_it() {
        let budget = MemoryBudget::new(1);
        let held = run(budget.hold(5 << 20));
        assert_eq!(held.num_permits(), 1 << 20);
        assert_eq!(budget.bytes.available_permits(), 0);
    }
}
