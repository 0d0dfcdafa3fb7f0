//! The engine thread and its request queue: dynamic (continuous) batching over a [`StepDecoder`].
//!
//! HTTP handlers [`Scheduler::submit`] prepared sequences and get one event channel per sequence. The
//! engine thread owns the decoder; between two steps it takes new submissions, drops sequences whose
//! client went away (their receiver was dropped), and admits waiting sequences into free batch slots,
//! so a new request waits at most one step of the current batch. Each step's committed prefixes go
//! through a [`TextTracker`] (stop strings, hold-back) and become [`Event`]s.
//!
//! Capacity: at most `max_batch` sequences decode at once and at most `max_queue` more may wait;
//! beyond that `submit` answers 429 at once. After [`Scheduler::close`] new work gets 503 while
//! accepted work runs to the end; [`Scheduler::abort`] fails whatever is left (the shutdown deadline).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::error::ApiError;
use super::metrics::Metrics;
use super::text::TextTracker;

pub use super::decoder::{
    DecoderError, FinishReason, SequenceKey, SequenceStatus, SequenceUpdate, StepDecoder,
    StepReport,
};

/// What a client's handler receives for one choice.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// More text (already cut at stop strings).
    Text(String),
    Finished {
        reason: FinishReason,
        completion_tokens: usize,
    },
    Failed(ApiError),
}

/// A sequence ready to queue.
#[derive(Debug)]
pub struct Job<S> {
    pub sequence: S,
    pub stop: Vec<String>,
    pub prompt_tokens: usize,
}

/// One choice's event stream; dropping it cancels the sequence.
pub type Submission = mpsc::UnboundedReceiver<Event>;

#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    pub max_batch: usize,
    pub max_queue: usize,
    /// How long newly admitted sequences wait for company before their first step.
    pub batch_window: Duration,
}

enum Command<S> {
    Submit(Vec<(Job<S>, mpsc::UnboundedSender<Event>)>),
    Close,
    Abort,
}

struct Shared {
    /// Sequences accepted and not yet finished (waiting + active).
    pending: AtomicUsize,
    accepting: AtomicBool,
}

/// Handle to the engine thread; cheap to share behind an `Arc`.
pub struct Scheduler<S> {
    commands: Mutex<std_mpsc::Sender<Command<S>>>,
    shared: Arc<Shared>,
    config: SchedulerConfig,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<S: Send + 'static> Scheduler<S> {
    /// Start the engine thread around `decoder`.
    pub fn start<D>(
        decoder: D,
        config: SchedulerConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self>
    where
        D: StepDecoder<Sequence = S>,
    {
        let (sender, receiver) = std_mpsc::channel();
        let shared = Arc::new(Shared {
            pending: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
        });
        let engine = EngineLoop {
            decoder,
            commands: receiver,
            shared: Arc::clone(&shared),
            metrics,
            config,
            waiting: VecDeque::new(),
            active: HashMap::new(),
            next_key: 0,
            last_step: Duration::ZERO,
        };
        let thread = std::thread::Builder::new()
            .name("hone-engine".into())
            .spawn(move || engine.run())?;
        Ok(Self {
            commands: Mutex::new(sender),
            shared,
            config,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queue all of a request's sequences, or none: 429 when they do not fit, 503 after `close`.
    pub fn submit(&self, jobs: Vec<Job<S>>) -> Result<Vec<Submission>, ApiError> {
        if !self.shared.accepting.load(Ordering::SeqCst) {
            return Err(ApiError::shutting_down());
        }
        let capacity = self.config.max_batch + self.config.max_queue;
        let count = jobs.len();
        self.shared
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |pending| {
                (pending + count <= capacity).then_some(pending + count)
            })
            .map_err(|_| ApiError::queue_full(self.config.max_queue))?;
        let mut receivers = Vec::with_capacity(count);
        let mut entries = Vec::with_capacity(count);
        for job in jobs {
            let (sender, receiver) = mpsc::unbounded_channel();
            entries.push((job, sender));
            receivers.push(receiver);
        }
        let sent = match self.commands.lock() {
            Ok(commands) => commands.send(Command::Submit(entries)).is_ok(),
            Err(_) => false,
        };
        if !sent {
            self.shared.pending.fetch_sub(count, Ordering::SeqCst);
            return Err(ApiError::shutting_down());
        }
        Ok(receivers)
    }

    pub fn is_accepting(&self) -> bool {
        self.shared.accepting.load(Ordering::SeqCst)
    }

    /// Sequences accepted and not finished.
    pub fn pending(&self) -> usize {
        self.shared.pending.load(Ordering::SeqCst)
    }

    /// Stop accepting; accepted work runs to the end, then the thread exits.
    pub fn close(&self) {
        self.shared.accepting.store(false, Ordering::SeqCst);
        self.send(Command::Close);
    }

    /// Fail everything still pending and stop the thread (shutdown deadline passed).
    pub fn abort(&self) {
        self.shared.accepting.store(false, Ordering::SeqCst);
        self.send(Command::Abort);
    }

    /// Wait for the engine thread to exit (after `close` or `abort`).
    pub fn join(&self) {
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn send(&self, command: Command<S>) {
        if let Ok(commands) = self.commands.lock() {
            let _ = commands.send(command);
        }
    }
}

struct Waiting<S> {
    job: Job<S>,
    events: mpsc::UnboundedSender<Event>,
    submitted: Instant,
}

struct Active {
    events: mpsc::UnboundedSender<Event>,
    tracker: TextTracker,
    submitted: Instant,
    sent_text: bool,
}

struct EngineLoop<D: StepDecoder> {
    decoder: D,
    commands: std_mpsc::Receiver<Command<D::Sequence>>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    config: SchedulerConfig,
    waiting: VecDeque<Waiting<D::Sequence>>,
    active: HashMap<SequenceKey, Active>,
    next_key: SequenceKey,
    /// Duration of the latest step, to size the batching window.
    last_step: Duration,
}

impl<D: StepDecoder> EngineLoop<D> {
    fn run(mut self) {
        let mut closing = false;
        loop {
            if self.active.is_empty() && self.waiting.is_empty() {
                if closing {
                    return;
                }
                // Idle: block until there is something to do.
                match self.commands.recv() {
                    Ok(command) => {
                        if !self.apply(command, &mut closing) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            while let Ok(command) = self.commands.try_recv() {
                if !self.apply(command, &mut closing) {
                    return;
                }
            }
            self.drop_cancelled();
            if self.admit() > 0 && !self.gather(&mut closing) {
                return;
            }
            self.publish_gauges();
            if !self.active.is_empty() {
                self.step();
                self.publish_gauges();
            }
        }
    }

    /// Returns false when the loop must end now.
    fn apply(&mut self, command: Command<D::Sequence>, closing: &mut bool) -> bool {
        match command {
            Command::Submit(entries) => {
                let submitted = Instant::now();
                self.waiting
                    .extend(entries.into_iter().map(|(job, events)| Waiting {
                        job,
                        events,
                        submitted,
                    }));
                true
            }
            Command::Close => {
                *closing = true;
                true
            }
            Command::Abort => {
                let error = ApiError {
                    message: "the server shut down before this request finished".into(),
                    ..ApiError::shutting_down()
                };
                for waiting in self.waiting.drain(..) {
                    let _ = waiting.events.send(Event::Failed(error.clone()));
                }
                for (key, active) in self.active.drain() {
                    self.decoder.remove(key);
                    let _ = active.events.send(Event::Failed(error.clone()));
                }
                self.shared.pending.store(0, Ordering::SeqCst);
                self.publish_gauges();
                false
            }
        }
    }

    fn finish_one(&self) {
        self.shared.pending.fetch_sub(1, Ordering::SeqCst);
    }

    fn drop_cancelled(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|waiting| !waiting.events.is_closed());
        let mut cancelled = before - self.waiting.len();
        let gone: Vec<SequenceKey> = self
            .active
            .iter()
            .filter(|(_, active)| active.events.is_closed())
            .map(|(key, _)| *key)
            .collect();
        for key in gone {
            self.decoder.remove(key);
            self.active.remove(&key);
            cancelled += 1;
        }
        for _ in 0..cancelled {
            self.finish_one();
        }
        Metrics::add(&self.metrics.cancelled, cancelled as u64);
    }

    /// Newly admitted sequences start a new cohort in the engine, which only sequences admitted
    /// before its first step can join: wait up to `batch_window` plus a tenth of the last step's
    /// time for requests sent at about the same time (clients whose previous answers came back
    /// together). Returns false when the loop must
    /// end now.
    fn gather(&mut self, closing: &mut bool) -> bool {
        // Waiting a tenth of a step costs the running sequences at most ~10%, and on a slow device
        // it catches clients whose requests trickle in over more than the fixed window.
        let window = self.config.batch_window + (self.last_step / 10).min(Duration::from_secs(1));
        let deadline = Instant::now() + window;
        while self.active.len() < self.config.max_batch.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.commands.recv_timeout(left) {
                Ok(command) => {
                    if !self.apply(command, closing) {
                        return false;
                    }
                    self.admit();
                }
                Err(_) => break,
            }
        }
        true
    }

    /// Move waiting sequences into free batch slots; returns how many.
    fn admit(&mut self) -> usize {
        let mut admitted = 0;
        while self.active.len() < self.config.max_batch.max(1) {
            let Some(waiting) = self.waiting.pop_front() else {
                break;
            };
            let key = self.next_key;
            self.next_key += 1;
            self.metrics
                .queue_wait(waiting.submitted.elapsed().as_secs_f64());
            Metrics::add(
                &self.metrics.prompt_tokens,
                waiting.job.prompt_tokens as u64,
            );
            match self.decoder.add(key, waiting.job.sequence) {
                Ok(()) => {
                    admitted += 1;
                    self.active.insert(
                        key,
                        Active {
                            events: waiting.events,
                            tracker: TextTracker::new(waiting.job.stop),
                            submitted: waiting.submitted,
                            sent_text: false,
                        },
                    );
                }
                Err(error) => {
                    let _ = waiting
                        .events
                        .send(Event::Failed(ApiError::decoder("", error)));
                    self.finish_one();
                }
            }
        }
        admitted
    }

    fn publish_gauges(&self) {
        self.metrics
            .queue_depth
            .store(self.waiting.len() as u64, Ordering::Relaxed);
        self.metrics
            .active_sequences
            .store(self.active.len() as u64, Ordering::Relaxed);
    }

    fn step(&mut self) {
        let batch = self.active.len();
        let started = Instant::now();
        let result = self.decoder.step();
        self.last_step = started.elapsed();
        let report = match result {
            Ok(report) => report,
            Err(error) => {
                tracing::error!("decoding step failed: {error}");
                let keys: Vec<SequenceKey> = self.active.keys().copied().collect();
                for key in keys {
                    self.decoder.remove(key);
                    if let Some(active) = self.active.remove(&key) {
                        let failure = ApiError::decoder("decoding failed: ", error.clone());
                        let _ = active.events.send(Event::Failed(failure));
                    }
                    self.finish_one();
                }
                return;
            }
        };
        self.metrics.step(batch, report.forward_passes);
        for update in report.updates {
            self.deliver(update);
        }
    }

    fn deliver(&mut self, update: SequenceUpdate) {
        let Some(active) = self.active.get_mut(&update.key) else {
            return;
        };
        let finished = !matches!(update.status, SequenceStatus::Running);
        let text = active.tracker.update(&update.text, finished);
        if !text.delta.is_empty() {
            if !active.sent_text {
                active.sent_text = true;
                self.metrics
                    .first_text(active.submitted.elapsed().as_secs_f64());
            }
            let _ = active.events.send(Event::Text(text.delta));
        }
        let end = if text.stopped {
            Some(Event::Finished {
                reason: FinishReason::Stop,
                completion_tokens: update.tokens,
            })
        } else {
            match update.status {
                SequenceStatus::Running => None,
                SequenceStatus::Finished(reason) => Some(Event::Finished {
                    reason,
                    completion_tokens: update.tokens,
                }),
                SequenceStatus::Failed(message) => Some(Event::Failed(ApiError::internal(message))),
            }
        };
        if let Some(end) = end {
            if let Event::Finished {
                completion_tokens, ..
            } = end
            {
                Metrics::add(&self.metrics.generated_tokens, completion_tokens as u64);
            }
            let _ = active.events.send(end);
            self.decoder.remove(update.key);
            self.active.remove(&update.key);
            self.finish_one();
        }
    }
}
