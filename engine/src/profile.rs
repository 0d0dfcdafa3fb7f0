//! Where a denoising step's time goes, for `hone bench --breakdown`: process-wide counters of the
//! time spent in the transformer layers, the output head (final norm included) and scoring (picking
//! a row's logits, then tokens and confidences). Everything else in a step is host code
//! (bookkeeping, selection, building inputs) and is the remainder of the step's wall time.
//!
//! Off by default: a phase then costs one relaxed atomic load. When on, each phase synchronises the
//! device before reading the clock at both ends, so GPU work is charged to the phase that queued it
//! (and the step gets a little slower on a GPU). The counters are global, so only one measured
//! workload should run at a time (the bench runs its cases one after another).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use candle_core::Device;

use crate::Result;

/// A measured part of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Layers,
    Head,
    Scoring,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Time accumulated per phase since the last [`reset`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimes {
    pub layers: Duration,
    pub head: Duration,
    pub scoring: Duration,
}

/// Turns measuring on or off.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Zeroes the counters.
pub fn reset() {
    for counter in &NANOS {
        counter.store(0, Ordering::Relaxed);
    }
}

/// The counters as they stand.
pub fn snapshot() -> PhaseTimes {
    let read = |phase: Phase| Duration::from_nanos(NANOS[phase as usize].load(Ordering::Relaxed));
    PhaseTimes {
        layers: read(Phase::Layers),
        head: read(Phase::Head),
        scoring: read(Phase::Scoring),
    }
}

/// A running phase (inert when measuring is off).
#[derive(Debug)]
#[must_use = "stop the timer to charge its phase"]
pub struct Timer {
    started: Option<Instant>,
}

/// Starts timing on `device` (after the work already queued there has finished).
pub fn start(device: &Device) -> Result<Timer> {
    if !ENABLED.load(Ordering::Relaxed) {
        return Ok(Timer { started: None });
    }
    device.synchronize()?;
    Ok(Timer {
        started: Some(Instant::now()),
    })
}

impl Timer {
    /// Charges the time since [`start`] (once `device` has finished the phase's work) to `phase`.
    pub fn stop(self, phase: Phase, device: &Device) -> Result<()> {
        if let Some(started) = self.started {
            device.synchronize()?;
            let nanos = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            NANOS[phase as usize].fetch_add(nanos, Ordering::Relaxed);
        }
        Ok(())
    }
}
