//! A request-counting, fault-injecting wrapper of any [`ObjectStore`], for tests, the
//! reliability suite and the bench: it counts requests and bytes by kind, and fails, hangs,
//! cuts or pauses the next request of a chosen kind. Never used on a live path.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use futures::stream::BoxStream;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, path::Path,
};
use tokio::sync::Notify;

use crate::{Backend, format::HEAD_SUFFIX};

/// A kind of storage request, as the sync makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// A LIST (of the heads, or of a device's own segments).
    List,
    /// A GET of a head.
    GetHead,
    /// A GET of a segment.
    GetSegment,
    /// A GET of the key object.
    GetKey,
    /// A create-if-absent PUT of a segment (or of the key object).
    PutSegment,
    /// The create-if-absent PUT of a device's first head.
    PutHeadCreate,
    /// A later head PUT (compare-and-swap, or the folder's overwrite).
    PutHeadUpdate,
    /// A DELETE.
    Delete,
}

/// What happens to the request a fault is set on.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Nothing: the request runs as usual (to aim the next fault at a later request).
    Pass,
    /// It fails with a storage error before reaching the storage.
    Fail,
    /// It never answers (a timeout must end it).
    Hang,
    /// A PUT whose upload is cut in the middle: the first half of the body lands under the
    /// name (as a non-atomic store could leave it), then the request fails.
    Cut,
    /// A PUT that lands, then its answer is lost (the request fails).
    LandThenFail,
    /// The request waits at [`Gate::reached`] until [`Gate::release`], then runs.
    Pause(Arc<Gate>),
}

/// Where a paused request waits.
#[derive(Debug, Default)]
pub struct Gate {
    reached: Notify,
    release: Notify,
}

impl Gate {
    /// Resolves once the paused request has arrived.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the paused request go on.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// Requests and bytes counted, and the faults to inject.
#[derive(Debug, Default)]
pub struct Counts {
    /// GETs (heads, segments, the key object).
    pub get: AtomicUsize,
    /// PUTs.
    pub put: AtomicUsize,
    /// LISTs.
    pub list: AtomicUsize,
    /// DELETEs, copies and anything else.
    pub other: AtomicUsize,
    /// Bytes of PUT bodies.
    pub bytes_put: AtomicU64,
    /// Bytes of GET answers (the objects' sizes).
    pub bytes_got: AtomicU64,
    faults: Mutex<VecDeque<(Request, Fault)>>,
}

impl Counts {
    /// The request counts `[get, put, list, other]` since the last call, reset.
    pub fn take(&self) -> [usize; 4] {
        [&self.get, &self.put, &self.list, &self.other].map(|c| c.swap(0, Ordering::SeqCst))
    }

    /// The bytes `[put, got]` since the last call, reset.
    pub fn take_bytes(&self) -> [u64; 2] {
        [&self.bytes_put, &self.bytes_got].map(|c| c.swap(0, Ordering::SeqCst))
    }

    /// Sets `fault` on the next request of kind `request` (faults are taken in order).
    pub fn inject(&self, request: Request, fault: Fault) {
        self.lock().push_back((request, fault));
    }

    /// Whether every injected fault has been taken.
    pub fn faults_taken(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Request, Fault)>> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take_fault(&self, request: Request) -> Option<Fault> {
        let mut faults = self.lock();
        let at = faults.iter().position(|(r, _)| *r == request)?;
        faults.remove(at).map(|(_, f)| f)
    }
}

/// The wrapper.
#[derive(Debug)]
pub struct Faulty {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counts>,
}

/// `backend` wrapped, with its counters and fault plan.
pub fn wrap(backend: Backend) -> (Backend, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let store = Faulty {
        inner: backend.store,
        counts: counts.clone(),
    };
    let wrapped = Backend::new(Arc::new(store), backend.flavor).with_timeout(backend.timeout);
    (wrapped, counts)
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "Faulty",
        source: "injected fault".into(),
    }
}

fn kind_of_get(location: &Path) -> Request {
    let name = location.as_ref();
    if name.ends_with(HEAD_SUFFIX) {
        Request::GetHead
    } else if name == crate::format::KEY_OBJECT_NAME {
        Request::GetKey
    } else {
        Request::GetSegment
    }
}

impl Faulty {
    /// Applies the fault set on `request`, if any, before the request runs: `Err` fails it,
    /// `Ok(Some)` is a PUT fault to apply around the real write.
    async fn before(&self, request: Request) -> object_store::Result<Option<Fault>> {
        match self.counts.take_fault(request) {
            None | Some(Fault::Pass) => Ok(None),
            Some(Fault::Fail) => Err(injected()),
            Some(Fault::Hang) => futures::future::pending().await,
            Some(Fault::Pause(gate)) => {
                gate.reached.notify_one();
                gate.release.notified().await;
                Ok(None)
            }
            Some(other) => Ok(Some(other)),
        }
    }
}

impl std::fmt::Display for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.counts.put.fetch_add(1, Ordering::SeqCst);
        self.counts
            .bytes_put
            .fetch_add(payload.content_length() as u64, Ordering::SeqCst);
        let request = if !location.as_ref().ends_with(HEAD_SUFFIX) {
            Request::PutSegment
        } else if matches!(opts.mode, PutMode::Create) {
            Request::PutHeadCreate
        } else {
            Request::PutHeadUpdate
        };
        match self.before(request).await? {
            Some(Fault::Cut) => {
                let bytes: Vec<u8> = payload.iter().flat_map(|b| b.to_vec()).collect();
                let half = PutPayload::from(bytes[..bytes.len() / 2].to_vec());
                self.inner.put_opts(location, half, opts).await?;
                Err(injected())
            }
            Some(Fault::LandThenFail) => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(injected())
            }
            _ => self.inner.put_opts(location, payload, opts).await,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.counts.put.fetch_add(1, Ordering::SeqCst);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.counts.get.fetch_add(1, Ordering::SeqCst);
        self.before(kind_of_get(location)).await?;
        let result = self.inner.get_opts(location, options).await?;
        self.counts
            .bytes_got
            .fetch_add(result.meta.size, Ordering::SeqCst);
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.counts.other.fetch_add(1, Ordering::SeqCst);
        match self.counts.take_fault(Request::Delete) {
            Some(Fault::Hang) => Box::pin(futures::stream::once(futures::future::pending())),
            None | Some(Fault::Pass) => self.inner.delete_stream(locations),
            Some(_) => Box::pin(futures::stream::once(async { Err(injected()) })),
        }
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counts.list.fetch_add(1, Ordering::SeqCst);
        match self.counts.take_fault(Request::List) {
            Some(Fault::Hang) => Box::pin(futures::stream::once(futures::future::pending())),
            None | Some(Fault::Pass) => self.inner.list(prefix),
            Some(_) => Box::pin(futures::stream::once(async { Err(injected()) })),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.counts.list.fetch_add(1, Ordering::SeqCst);
        self.before(Request::List).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.counts.other.fetch_add(1, Ordering::SeqCst);
        self.inner.copy_opts(from, to, options).await
    }
}
