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
//! CPU that was idle starts slow. So a window that is likely to run in parallel calls the
//! workers in ([`Muster`]) before it is planned: they wait spinning, on CPUs of their own,
//! until the work is handed out, and the wake-up overlaps the planning.
//!
//! The same holds the other way: a calling thread that has done its share and waits for a
//! worker sleeps on the scope's latch, and is woken tens of microseconds after the worker
//! is done. So it waits spinning first ([`Finish`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
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
