//! A connector run inside the test process on a tokio runtime of its own,
//! so that a test can crash it as kill -9 would (every task dropped where
//! it stands) and start it again on the same addresses and journal.

use std::future::Future;
use std::time::Duration;

/// The connector's runtime; dropping it (or [`crash`](Self::crash)) ends
/// every task at once.
#[derive(Debug)]
pub struct InProcess {
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcess {
    /// Runs `bind` on a new runtime and spawns the serving future it
    /// returns; returns the runtime and the addresses `bind` reported. A
    /// crashed predecessor may hold the addresses for a moment, so a
    /// failed `bind` is tried again (at most 50 times, 100 ms apart).
    pub fn start<A, F, Fut, S>(bind: F) -> (InProcess, A)
    where
        A: Send + 'static,
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<(A, S)>>,
        S: Future + Send + 'static,
        S::Output: Send + 'static,
    {
        // A thread of its own: a runtime cannot be started, nor blocked
        // on, from the test's runtime.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let mut tries = 0;
            let (addresses, serve) = loop {
                match runtime.block_on(bind()) {
                    Ok(bound) => break bound,
                    Err(error) if tries < 50 => {
                        tries += 1;
                        eprintln!("binding again: {error:#}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(error) => panic!("the connector does not bind: {error:#}"),
                }
            };
            runtime.spawn(serve);
            (
                InProcess {
                    runtime: Some(runtime),
                },
                addresses,
            )
        })
        .join()
        .expect("the connector's thread")
    }

    /// Ends the connector as kill -9 would.
    pub fn crash(self) {}
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
