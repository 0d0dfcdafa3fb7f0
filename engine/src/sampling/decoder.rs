//! The step-level batch decoder for servers (continuous batching): independent sequences, each
//! with its own settings, seed and RNG, added and removed between steps; `step()` advances every
//! active sequence by one denoising step and returns per-sequence events.
//!
//! Sequences that share a canvas shape and step structure and arrive before the same step join
//! one cohort and share one batched forward; others run in their own cohorts, one forward each per
//! step. A sequence's result never depends on what else is being decoded (see `cohort`).

use super::cohort::{Cohort, SequenceRequest};
use super::events::SequenceEvent;
use crate::model::{DiffusionModel, ModelInfo};
use crate::{Error, Result};

/// A handle to a sequence in a [`BatchDecoder`].
pub type SequenceId = u64;

/// Decodes many sequences step by step.
#[derive(Debug)]
pub struct BatchDecoder {
    info: ModelInfo,
    cohorts: Vec<Cohort>,
    finished: Vec<Cohort>,
    released: std::collections::HashSet<SequenceId>,
    next_id: SequenceId,
    forward_passes: usize,
    /// The most sequences one forward may hold (0 = no limit).
    max_batch: usize,
}

impl BatchDecoder {
    pub fn new(info: &ModelInfo, max_batch: usize) -> Self {
        Self {
            info: info.clone(),
            cohorts: Vec::new(),
            finished: Vec::new(),
            released: Default::default(),
            next_id: 0,
            forward_passes: 0,
            max_batch,
        }
    }

    /// Adds a sequence; it takes part from the next `step()` on.
    pub fn add(&mut self, request: SequenceRequest) -> Result<SequenceId> {
        let id = self.next_id;
        let max_batch = self.max_batch;
        if let Some(cohort) = self.cohorts.iter_mut().find(|cohort| {
            cohort.accepts(&request) && (max_batch == 0 || cohort.ids().count() < max_batch)
        }) {
            cohort.push(id, request)?;
        } else {
            self.cohorts
                .push(Cohort::new(&self.info, id, vec![request])?);
        }
        self.next_id += 1;
        Ok(id)
    }

    /// Cancels a sequence; returns its final event, or `None` if it is unknown or already done.
    pub fn remove(&mut self, id: SequenceId) -> Option<SequenceEvent> {
        self.cohorts
            .iter_mut()
            .find(|cohort| cohort.contains(id))
            .and_then(|cohort| cohort.cancel(id))
    }

    /// Whether any sequence is still being decoded.
    pub fn is_idle(&self) -> bool {
        self.cohorts.iter().all(Cohort::is_done)
    }

    /// Live sequences.
    pub fn active(&self) -> usize {
        self.cohorts
            .iter()
            .filter(|cohort| !cohort.is_done())
            .map(|cohort| cohort.ids().count())
            .sum()
    }

    /// One denoising step for every active sequence.
    pub fn step(&mut self, model: &mut dyn DiffusionModel) -> Result<Vec<SequenceEvent>> {
        let mut events = Vec::new();
        for cohort in &mut self.cohorts {
            if !cohort.is_done() {
                self.forward_passes += 1;
            }
            events.extend(cohort.step(model)?);
        }
        let (done, running): (Vec<Cohort>, Vec<Cohort>) = std::mem::take(&mut self.cohorts)
            .into_iter()
            .partition(Cohort::is_done);
        self.cohorts = running;
        self.finished.extend(done);
        Ok(events)
    }

    /// Batched forward passes run so far (one per cohort and step).
    pub fn forward_passes(&self) -> usize {
        self.forward_passes
    }

    /// The canvas of a sequence (finished or not).
    pub fn canvas(&self, id: SequenceId) -> Option<&[u32]> {
        self.cohorts
            .iter()
            .chain(&self.finished)
            .find_map(|cohort| cohort.canvas(id))
    }

    /// Forward passes a sequence took part in.
    pub fn forwards(&self, id: SequenceId) -> Option<usize> {
        self.cohorts
            .iter()
            .chain(&self.finished)
            .find_map(|cohort| cohort.forwards(id))
    }

    /// Forgets a finished sequence (servers call this once they have its result).
    pub fn release(&mut self, id: SequenceId) -> Result<()> {
        if self
            .cohorts
            .iter()
            .any(|cohort| cohort.contains(id) && !cohort.is_done())
        {
            return Err(Error::InvalidInput(format!(
                "sequence {id} is still running: remove it first"
            )));
        }
        self.released.insert(id);
        let released = &self.released;
        self.finished
            .retain(|cohort| !cohort.ids().all(|other| released.contains(&other)));
        Ok(())
    }
}
