//! The local engine's thread for the agent: jobs are served one at a time, in arrival order, on a
//! dedicated thread fed by a channel (the engine is synchronous and owns the model); each answer
//! comes back through a oneshot channel and the text so far through an unbounded one, so the
//! agent's async loop never blocks on the engine.
//!
//! Two things the async side adds:
//! - streaming: the engine reports each candidate's committed text so far; it is passed on as
//!   deltas through hone-serve's `TextTracker` (the one stop-string streamer, also used by `hone
//!   serve`), which holds back a tail that could still become a stop string, so a client never sees
//!   the first characters of one;
//! - abandonment: a caller that stops waiting (the agent's budget runs out and drops the future)
//!   sets the job's cancel flag, so the engine stops after its current step and the thread is free
//!   for the next job instead of finishing a generation nobody reads.
//!
//! `hone serve` has its own engine thread (`hone_serve::scheduler`): it batches sequences from many
//! requests step by step, which this one-job-at-a-time loop does not need.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use hone_agent::{StreamCallback, StreamUpdate};
use hone_engine::generate::{GenerateOutput, GenerateRequest};
use hone_serve::text::TextTracker;

/// Reports one candidate's committed text so far.
pub type Progress<'a> = &'a mut dyn FnMut(usize, &str);

/// What the thread runs for each job: the request, a progress callback, and the cancel flag to
/// poll between steps.
pub trait Work: Send + 'static {
    fn run(
        &mut self,
        request: &GenerateRequest,
        progress: Progress<'_>,
        cancel: &AtomicBool,
    ) -> hone_engine::Result<GenerateOutput>;
}

impl<F> Work for F
where
    F: FnMut(&GenerateRequest, Progress<'_>, &AtomicBool) -> hone_engine::Result<GenerateOutput>
        + Send
        + 'static,
{
    fn run(
        &mut self,
        request: &GenerateRequest,
        progress: Progress<'_>,
        cancel: &AtomicBool,
    ) -> hone_engine::Result<GenerateOutput> {
        self(request, progress, cancel)
    }
}

type Reply = tokio::sync::oneshot::Sender<hone_engine::Result<GenerateOutput>>;

struct Job {
    request: GenerateRequest,
    reply: Reply,
    stream: Option<tokio::sync::mpsc::UnboundedSender<StreamUpdate>>,
    cancel: Arc<AtomicBool>,
}

/// Sets the cancel flag when dropped before [`CancelOnDrop::disarm`]: the caller stopped waiting.
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// The sending side; the thread ends when this is dropped.
pub struct EngineThread {
    jobs: mpsc::Sender<Job>,
}

impl EngineThread {
    /// Start the thread that runs `work` for every job.
    pub fn start(mut work: impl Work) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("hone-engine".to_owned())
            .spawn(move || {
                while let Ok(job) = receiver.recv() {
                    if job.cancel.load(Ordering::Relaxed) {
                        // Abandoned while queued: nobody waits for it.
                        continue;
                    }
                    let mut progress = |candidate: usize, text: &str| {
                        if let Some(stream) = &job.stream {
                            let _ = stream.send(StreamUpdate {
                                index: candidate,
                                delta: text.to_owned(),
                            });
                        }
                    };
                    let result = work.run(&job.request, &mut progress, &job.cancel);
                    let _ = job.reply.send(result);
                }
            })?;
        Ok(Self { jobs })
    }

    /// Run `request` on the thread. With `stream`, each candidate's new text is passed on as it is
    /// committed (never a stop string, nor the start of one). Dropping the returned future cancels
    /// the job.
    pub async fn submit(
        &self,
        request: GenerateRequest,
        stream: Option<StreamCallback<'_>>,
    ) -> hone_agent::Result<GenerateOutput> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let (sender, mut updates) = tokio::sync::mpsc::unbounded_channel::<StreamUpdate>();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop(Some(cancel.clone()));
        let mut streams = Streams::new(request.stop.clone());
        let job = Job {
            request,
            reply,
            stream: stream.is_some().then_some(sender),
            cancel,
        };
        self.jobs
            .send(job)
            .map_err(|_| hone_agent::Error::Backend("the engine thread has stopped".into()))?;
        let mut answer = std::pin::pin!(answer);
        loop {
            tokio::select! {
                result = &mut answer => {
                    guard.disarm();
                    let output = result
                        .map_err(|_| {
                            hone_agent::Error::Backend("the engine thread stopped mid-request".into())
                        })?
                        .map_err(|error| hone_agent::Error::Model(Box::new(error)))?;
                    if let Some(stream) = stream {
                        // The thread sent every update before its answer: pass them on in order.
                        while let Ok(update) = updates.try_recv() {
                            if let Some(update) = streams.update(update.index, &update.delta, false) {
                                stream(update);
                            }
                        }
                        for candidate in &output.candidates {
                            if let Some(update) = streams.update(candidate.index, &candidate.text, true) {
                                stream(update);
                            }
                        }
                    }
                    return Ok(output);
                }
                Some(update) = updates.recv() => {
                    if let Some(stream) = stream {
                        if let Some(update) = streams.update(update.index, &update.delta, false) {
                            stream(update);
                        }
                    }
                }
            }
        }
    }
}

/// One [`TextTracker`] per candidate.
struct Streams {
    stop: Vec<String>,
    trackers: Vec<TextTracker>,
}

impl Streams {
    fn new(stop: Vec<String>) -> Self {
        Self {
            stop,
            trackers: Vec::new(),
        }
    }

    /// The delta to pass on for candidate `index` whose committed text is now `text`.
    fn update(&mut self, index: usize, text: &str, finished: bool) -> Option<StreamUpdate> {
        while self.trackers.len() <= index {
            self.trackers.push(TextTracker::new(self.stop.clone()));
        }
        let update = self.trackers[index].update(text, finished);
        (!update.delta.is_empty()).then_some(StreamUpdate {
            index,
            delta: update.delta,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use hone_engine::generate::{Candidate, Prompt, Usage};
    use hone_engine::sampling::{FinishReason, SamplerSettings};

    use super::*;

    fn request(text: &str, stop: &[&str]) -> GenerateRequest {
        GenerateRequest {
            prompt: Prompt::Text(text.to_owned()),
            settings: SamplerSettings::default(),
            candidates: 1,
            seed: 0,
            stop: stop.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn output(text: &str, finish_reason: FinishReason) -> GenerateOutput {
        GenerateOutput {
            candidates: vec![Candidate {
                index: 0,
                seed: 0,
                hole_lengths: vec![],
                ids: vec![],
                text: text.to_owned(),
                holes: vec![],
                filled: None,
                finish_reason,
                forwards: 1,
            }],
            usage: Usage::default(),
        }
    }

    /// A fake engine: the prompt `slow` decodes until cancelled (a step every 5 ms, for at most
    /// 30 s); any other prompt reports its text in the chunks given by `|` and finishes.
    fn fake(cancelled: Arc<AtomicBool>) -> impl Work {
        move |request: &GenerateRequest, progress: Progress<'_>, cancel: &AtomicBool| {
            let Prompt::Text(text) = &request.prompt else {
                panic!("unexpected prompt");
            };
            if text == "slow" {
                let started = Instant::now();
                while !cancel.load(Ordering::Relaxed) {
                    assert!(
                        started.elapsed() < Duration::from_secs(30),
                        "never cancelled"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                cancelled.store(true, Ordering::Relaxed);
                return Ok(output("", FinishReason::Cancelled));
            }
            let mut so_far = String::new();
            for chunk in text.split('|') {
                so_far.push_str(chunk);
                progress(0, &so_far);
            }
            Ok(output(&so_far, FinishReason::Stop))
        }
    }

    #[tokio::test]
    async fn an_abandoned_job_stops_the_engine_and_frees_the_thread() {
        let cancelled = Arc::new(AtomicBool::new(false));
        let thread = EngineThread::start(fake(cancelled.clone())).unwrap();
        let started = Instant::now();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            thread.submit(request("slow", &[]), None),
        )
        .await;
        assert!(abandoned.is_err(), "the budget ran out");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The next job is served by the same thread once the abandoned one has stopped.
        let next = tokio::time::timeout(
            Duration::from_secs(10),
            thread.submit(request("a|b", &[]), None),
        )
        .await
        .expect("the engine thread is free for the next job")
        .unwrap();
        assert_eq!(next.candidates[0].text, "ab");
        assert!(
            cancelled.load(Ordering::Relaxed),
            "the engine saw the cancel flag"
        );
    }

    #[tokio::test]
    async fn a_stop_string_split_across_chunks_is_never_streamed() {
        let thread = EngineThread::start(fake(Arc::new(AtomicBool::new(false)))).unwrap();
        let deltas = Mutex::new(Vec::new());
        let record = |update: StreamUpdate| deltas.lock().unwrap().push(update.delta);
        // The engine's text so far grows `fn f` → `fn f\nE` → `fn f\nEN`: the tail `\nE`, `\nEN`
        // could become the stop string `\nEND`, so it is held back; the final text (cut by the
        // engine before the stop string) releases nothing more.
        let output = thread
            .submit(request("fn f|\nE|N", &["\nEND"]), Some(&record))
            .await
            .unwrap();
        assert_eq!(output.candidates[0].text, "fn f\nEN");
        let deltas = deltas.into_inner().unwrap();
        assert_eq!(deltas, vec!["fn f".to_owned(), "\nEN".to_owned()]);

        // Chunks that turn out not to be the stop string are released when they diverge.
        let deltas = Mutex::new(Vec::new());
        let record = |update: StreamUpdate| deltas.lock().unwrap().push(update.delta);
        thread
            .submit(request("a\nE|Nx|y", &["\nEND"]), Some(&record))
            .await
            .unwrap();
        assert_eq!(deltas.into_inner().unwrap().concat(), "a\nENxy");
    }
}
