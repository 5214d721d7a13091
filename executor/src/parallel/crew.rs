//! Handing work to the pool's threads on virtual machines.
//!
//! On virtual machines (this project's 2-core machine among them) an idle virtual CPU can
//! look preempted to the guest scheduler, so a pool thread woken by a busy thread is queued
//! on the waker's CPU and only moves to the idle one at the next load balance, milliseconds
//! later: work handed over that way runs after the waker's instead of beside it. Stepping
//! off the CPU for a moment after waking the workers lets a woken worker run there, and the
//! caller is then woken onto a CPU of its own. It is a nudge, not a guarantee; results never
//! depend on it, only the time.
//!
//! Waking a sleeping worker costs tens of microseconds even when it works, and a virtual
//! CPU that was idle starts slow. So a window that is likely to run in parallel (no sender
//! carries most of it) calls the workers in ([`Muster`]) before its lanes are planned: they
//! wait spinning, on CPUs of their own, until the work is handed out, and the wake-up
//! overlaps the planning. Any other window leaves them asleep, since the wake-up also costs
//! the waker's CPU (3 to 4% of a block of 1,000 ETH transfers from one sender).
//!
//! The same holds the other way: a calling thread that has done its share and waits for a
//! worker sleeps on the scope's latch, and is woken tens of microseconds after the worker
//! is done. So it waits spinning first ([`Finish`]).

use std::{
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// How long the calling thread sleeps after waking workers.
const HAND_OVER: Duration = Duration::from_micros(20);

/// Longest a mustered worker spins before it gives its CPU back (planning a full window
/// takes well under this).
const MAX_WAIT: Duration = Duration::from_millis(2);

/// Lets freshly woken workers take a CPU of their own (see the module documentation).
pub(super) fn hand_over() {
    std::thread::sleep(HAND_OVER);
}

/// Spins while `busy` holds, for at most [`MAX_WAIT`]; false if it gave up.
fn spin_while(mut busy: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + MAX_WAIT;
    let mut spins = 0u32;
    while busy() {
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(256) && Instant::now() > deadline {
            return false;
        }
    }
    true
}

#[derive(Default)]
struct Roll {
    arrived: AtomicUsize,
    released: AtomicBool,
}

/// Jobs of a scope that tell the calling thread they are done, so that it can wait for
/// them spinning (on a CPU of its own) instead of sleeping on the scope's latch.
#[derive(Default)]
pub(super) struct Finish {
    done: AtomicUsize,
}

impl Finish {
    /// Called by a job as its last step.
    pub(super) fn done(&self) {
        self.done.fetch_add(1, Ordering::Release);
    }

    /// Spins until `jobs` jobs are done, or [`MAX_WAIT`] passes (then the scope's own wait
    /// takes over). Only worth it when every worker has a CPU of its own: `spin` false
    /// returns at once.
    pub(super) fn wait(&self, jobs: usize, spin: bool) {
        if !spin {
            return;
        }
        if !spin_while(|| self.done.load(Ordering::Acquire) < jobs) {
            return;
        }
        // The pool marks a job complete just after its last step: a moment more, and the
        // scope finds it complete instead of going to sleep.
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

/// Workers called in ahead of work: each spins until the muster is dropped (or
/// [`MAX_WAIT`] passes).
pub(super) struct Muster {
    roll: Arc<Roll>,
    workers: usize,
}

impl Muster {
    /// Calls in `workers` threads of `pool`.
    pub(super) fn call(pool: &rayon::ThreadPool, workers: usize) -> Self {
        let roll = Arc::new(Roll::default());
        for _ in 0..workers {
            let roll = roll.clone();
            pool.spawn(move || {
                roll.arrived.fetch_add(1, Ordering::AcqRel);
                spin_while(|| !roll.released.load(Ordering::Acquire));
            });
        }
        Self { roll, workers }
    }

    /// Whether every worker called in is waiting on a CPU.
    pub(super) fn present(&self) -> bool {
        self.roll.arrived.load(Ordering::Acquire) >= self.workers
            && !self.roll.released.load(Ordering::Acquire)
    }
}

impl Drop for Muster {
    fn drop(&mut self) {
        self.roll.released.store(true, Ordering::Release);
    }
}

/// A group's transactions not started yet, which a worker done with its own group may take
/// over ([`Claim::steal`]): the block's groups are packed by gas before execution, but the
/// two CPUs of a virtual machine do not run at the same speed, nor start at the same time.
///
/// One word holds both ends, so the owner's step and a thief's cut are each one atomic
/// operation: the low half counts the positions the owner started, the high half is where
/// the owner stops. Each claim has cache lines of its own: the owners of two groups step
/// their claims on every transaction, and claims side by side would bounce one line
/// between their CPUs (128 bytes, as CPUs fetch lines in adjacent pairs).
#[repr(align(128))]
pub(super) struct Claim {
    /// Positions started (low half) and the end (high half).
    word: AtomicU64,
    /// When the owner began, in nanoseconds from the window's epoch, plus one (zero: not
    /// yet): with the positions started, how fast it goes.
    began: AtomicU64,
}

/// Fewest transactions a group must have left for a thief to take part of them: taking
/// over costs a view of its own to set up and validate.
pub(super) const MIN_STEAL: u32 = 16;

impl Claim {
    /// A claim on all `len` positions of a group.
    pub(super) fn new(len: usize) -> Self {
        Self {
            word: AtomicU64::new((len as u64) << 32),
            began: AtomicU64::new(0),
        }
    }

    /// The owner begins, `at` after the window's epoch.
    pub(super) fn begin(&self, at: Duration) {
        self.began
            .store(at.as_nanos() as u64 + 1, Ordering::Relaxed);
    }

    /// The owner's time per position so far, `now` after the window's epoch; `None` before
    /// it began or started anything.
    pub(super) fn pace(&self, now: Duration) -> Option<f64> {
        let began = self.began.load(Ordering::Relaxed).checked_sub(1)?;
        let started = self.word.load(Ordering::Acquire) as u32;
        (started > 0)
            .then(|| (now.as_nanos() as u64).saturating_sub(began) as f64 / f64::from(started))
    }

    /// The owner asks to start its next position; false once the rest was taken (or run).
    pub(super) fn next(&self) -> bool {
        let s = self.word.fetch_add(1, Ordering::AcqRel);
        (s as u32) < (s >> 32) as u32
    }

    /// Positions not started yet.
    pub(super) fn left(&self) -> u32 {
        let s = self.word.load(Ordering::Acquire);
        ((s >> 32) as u32).saturating_sub(s as u32)
    }

    /// Takes the back `share` (kept within a quarter and three quarters) of what is left,
    /// from the position in `splits` (ascending) nearest that point, if at least `min`
    /// positions are left.
    pub(super) fn steal(&self, splits: &[u32], min: u32, share: f64) -> Option<Range<u32>> {
        let share = if share.is_finite() {
            share.clamp(0.25, 0.75)
        } else {
            0.5
        };
        let mut s = self.word.load(Ordering::Acquire);
        loop {
            let (next, end) = (s as u32, (s >> 32) as u32);
            if end <= next || end - next < min.max(2) {
                return None;
            }
            let taken = ((f64::from(end - next) * share).round() as u32).clamp(1, end - next - 1);
            let middle = end - taken;
            // The split nearest the middle that leaves both sides something.
            let at = splits.partition_point(|&p| p < middle);
            let after = splits.get(at).copied().filter(|&p| p < end);
            let before = at.checked_sub(1).map(|i| splits[i]).filter(|&p| p > next);
            let split = match (before, after) {
                (Some(b), Some(a)) => {
                    if middle - b <= a - middle {
                        b
                    } else {
                        a
                    }
                }
                (b, a) => b.or(a)?,
            };
            let cut = (u64::from(split) << 32) | u64::from(next);
            match self
                .word
                .compare_exchange(s, cut, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(split..end),
                Err(now) => s = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_alone_runs_every_position_once() {
        let claim = Claim::new(5);
        assert_eq!((0..8).filter(|_| claim.next()).count(), 5);
        assert_eq!(claim.left(), 0);
        assert_eq!(claim.steal(&[1, 2, 3, 4], 2, 0.5), None);
    }

    #[test]
    fn a_thief_takes_the_back_half_from_the_split_nearest_the_middle() {
        let claim = Claim::new(100);
        assert!(claim.next() && claim.next());
        // 98 left: the middle is 51; 50 is nearer than 60.
        assert_eq!(claim.steal(&[1, 10, 50, 60, 99], 16, 0.5), Some(50..100));
        assert_eq!(claim.left(), 48);
        // Only a split inside what is left counts; none there, nothing is taken.
        assert_eq!(claim.steal(&[1, 2, 50, 99], 2, 0.5), None);
        assert_eq!(claim.steal(&[30], 2, 0.5), Some(30..50));
        assert_eq!(claim.steal(&[], 2, 0.5), None);
        assert_eq!((0..100).filter(|_| claim.next()).count(), 28);
        // Too little left to be worth a view of its own.
        let short = Claim::new(10);
        assert_eq!(
            short.steal(&(1..10).collect::<Vec<_>>(), MIN_STEAL, 0.5),
            None
        );
    }

    #[test]
    fn a_faster_thief_takes_more_within_bounds() {
        let all: Vec<u32> = (1..100).collect();
        // The owner has 100 left; a thief twice as fast takes two thirds.
        assert_eq!(Claim::new(100).steal(&all, 2, 2.0 / 3.0), Some(33..100));
        // Never more than three quarters, nor less than one quarter.
        assert_eq!(Claim::new(100).steal(&all, 2, 0.99), Some(25..100));
        assert_eq!(Claim::new(100).steal(&all, 2, 0.01), Some(75..100));
        assert_eq!(Claim::new(100).steal(&all, 2, f64::NAN), Some(50..100));
    }

    #[test]
    fn pace_is_time_per_started_position() {
        let claim = Claim::new(10);
        assert_eq!(claim.pace(Duration::from_micros(50)), None);
        claim.begin(Duration::from_micros(10));
        assert_eq!(claim.pace(Duration::from_micros(50)), None);
        assert!(claim.next() && claim.next());
        let pace = claim.pace(Duration::from_micros(50)).unwrap();
        assert!((pace - 20_000.0).abs() < 1.0, "{pace}");
    }

    #[test]
    fn owner_and_thieves_racing_split_the_positions_exactly() {
        const LEN: u32 = 20_000;
        let splits: Vec<u32> = (1..LEN).collect();
        for _ in 0..20 {
            let claim = Claim::new(LEN as usize);
            let (owned, taken) = std::thread::scope(|scope| {
                let thieves: Vec<_> = (0..2)
                    .map(|_| scope.spawn(|| claim.steal(&splits, 2, 0.5)))
                    .collect();
                let mut owned = 0u32;
                while claim.next() {
                    owned += 1;
                }
                let taken: Vec<Range<u32>> = thieves
                    .into_iter()
                    .filter_map(|t| t.join().unwrap())
                    .collect();
                (owned, taken)
            });
            // The owner ran 0..owned; the taken ranges tile the rest.
            let mut ranges = taken;
            ranges.sort_by_key(|r| r.start);
            let mut at = owned;
            for range in ranges {
                assert_eq!(range.start, at);
                assert!(range.end > range.start);
                at = range.end;
            }
            assert_eq!(at, LEN);
        }
    }
}
