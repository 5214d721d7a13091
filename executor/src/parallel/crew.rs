//! Handing work to the pool's threads on virtual machines.
//!
//! On virtual machines (this project's 2-core machine among them) an idle virtual CPU can
//! look preempted to the guest scheduler, so a pool thread woken by a busy thread is queued
//! on the waker's CPU and only moves to the idle one at the next load balance, milliseconds
//! later: work handed over that way runs after the waker's instead of beside it. Stepping
//! off the CPU for a moment after waking the workers lets a woken worker run there, and the
//! caller is then woken onto a CPU of its own. It is a nudge, not a guarantee; results never
//! depend on it, only the time.

use std::time::Duration;

/// How long the calling thread sleeps after waking workers.
const HAND_OVER: Duration = Duration::from_micros(20);

/// Lets freshly woken workers take a CPU of their own (see the module documentation).
pub(super) fn hand_over() {
    std::thread::sleep(HAND_OVER);
}
