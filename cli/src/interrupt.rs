//! Ctrl-C for long batch commands (`hone batch`, `hone refactor`): the first SIGINT sets a flag so
//! no new work starts and what finished is kept; a second one exits at once (status 130).

use std::sync::atomic::{AtomicBool, Ordering};

/// The flag set by the first Ctrl-C; `on_first` is said on stderr when it comes.
pub fn interrupt_flag(on_first: &'static str) -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            FLAG.store(true, Ordering::SeqCst);
            crate::hooks::pre_commit::say(on_first);
            if tokio::signal::ctrl_c().await.is_ok() {
                hone_tools::runner::interrupt::stop_all();
                std::process::exit(130);
            }
        });
    });
    &FLAG
}
