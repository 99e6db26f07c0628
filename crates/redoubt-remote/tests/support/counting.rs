//! A request-counting (and head-fault-injecting) wrapper around any object store.
#![allow(unreachable_pub)]

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use futures::stream::BoxStream;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, path::Path,
};
use redoubt_remote::Backend;

#[derive(Debug, Default)]
pub struct Counts {
    pub get: AtomicUsize,
    pub put: AtomicUsize,
    pub list: AtomicUsize,
    pub other: AtomicUsize,
    /// Fault on the next head PUT: 1 fails it before it reaches the storage, 2 after it landed
    /// (the answer is lost).
    pub head_fault: AtomicUsize,
}

impl Counts {
    pub fn take(&self) -> [usize; 4] {
        [&self.get, &self.put, &self.list, &self.other].map(|c| c.swap(0, Ordering::SeqCst))
    }
}

#[derive(Debug)]
pub struct Counting {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counts>,
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.counts.put.fetch_add(1, Ordering::SeqCst);
        let fault = if location.as_ref().ends_with(".head") {
            self.counts.head_fault.swap(0, Ordering::SeqCst)
        } else {
            0
        };
        let injected = || object_store::Error::Generic {
            store: "Counting",
            source: "injected fault".into(),
        };
        match fault {
            1 => Err(injected()),
            2 => {
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
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.counts.other.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counts.list.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.counts.list.fetch_add(1, Ordering::SeqCst);
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

pub fn counting(backend: Backend) -> (Backend, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let store = Counting {
        inner: backend.store,
        counts: counts.clone(),
    };
    (Backend::new(Arc::new(store), backend.flavor), counts)
}
