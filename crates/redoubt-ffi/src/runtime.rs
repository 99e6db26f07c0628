//! The crate's own tokio runtime: every call that needs one runs on it, so an app (a Kotlin
//! main thread, Swift, a Python script) needs none and no call panics for want of one.

use std::{future::Future, sync::OnceLock};

use tokio::runtime::{Builder, Handle, Runtime};

use crate::RedoubtError;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The shared runtime, built at the first call (two worker threads: a phone has few cores and
/// the node's work is mostly waiting on the network).
pub(crate) fn runtime() -> Result<&'static Runtime, RedoubtError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let built = Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("redoubt-ffi")
        .enable_all()
        .build()
        .map_err(|e| RedoubtError::Storage {
            message: format!("could not start the library's runtime: {e}"),
        })?;
    // Another thread may have won the race: its runtime is used and this one dropped.
    let _ = RUNTIME.set(built);
    RUNTIME
        .get()
        .ok_or_else(|| RedoubtError::not_running("the library's runtime is gone"))
}

/// Runs `future` to completion on the runtime and returns its output, from any thread: a
/// thread already inside the runtime (a listener callback calling back in) runs it from a
/// scoped helper thread, since a runtime thread may not block on the runtime itself.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, RedoubtError>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    if Handle::try_current().is_err() {
        return Ok(rt.block_on(future));
    }
    std::thread::scope(|s| {
        s.spawn(|| rt.block_on(future))
            .join()
            .map_err(|_| RedoubtError::not_running("a call panicked on the library's runtime"))
    })
}
