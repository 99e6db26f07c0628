//! Backends by URL: a folder (`file:///path` or a plain path), S3 (`s3://bucket/prefix`),
//! Azure Blob (`az://container/prefix`) and GCS (`gs://bucket/prefix`), through
//! [`object_store`], with credentials from the environment as each cloud's tools expect
//! (the builders' `from_env`: `AWS_*`, `AZURE_*`, `GOOGLE_*`).

use std::{future::Future, sync::Arc, time::Duration};

use futures::TryStreamExt;
use object_store::{
    GetOptions, ListResult, ObjectMeta, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions,
    PutPayload, PutResult, aws::AmazonS3Builder, azure::MicrosoftAzureBuilder,
    gcp::GoogleCloudStorageBuilder, local::LocalFileSystem, path::Path, prefix::PrefixStore,
};

use crate::Error;

/// Which kind of storage a backend is; decides how a head is updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// A local or mounted folder: create-if-absent is atomic, conditional update is not
    /// available (the head is checked, then overwritten).
    Folder,
    /// S3 or an S3-compatible store: If-Match updates.
    S3,
    /// Azure Blob: If-Match updates.
    Azure,
    /// Google Cloud Storage: generation-match updates.
    Gcs,
}

impl Flavor {
    /// Whether `PutMode::Update` works here, so a head update is a compare-and-swap.
    pub fn conditional_update(self) -> bool {
        !matches!(self, Self::Folder)
    }
}

/// How long one storage request may take by default before the sync gives up on it
/// ([`Error::Timeout`]); a segment GET or PUT of up to 8 MiB must fit in it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A storage backend, already narrowed to the remote's prefix.
#[derive(Clone, Debug)]
pub struct Backend {
    /// The object store, every name relative to the remote's prefix.
    pub store: Arc<dyn ObjectStore>,
    /// What kind of storage it is.
    pub flavor: Flavor,
    /// The longest one request may take (connecting, sending and reading its whole answer).
    pub timeout: Duration,
}

impl Backend {
    /// Wraps an object store (a test's wrapper, an embedder's own) of the given flavor.
    pub fn new(store: Arc<dyn ObjectStore>, flavor: Flavor) -> Self {
        Self {
            store,
            flavor,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The same backend with another per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs one request under the timeout, naming it in any error.
    async fn request<T>(
        &self,
        request: &'static str,
        name: &str,
        call: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::storage(request, name, e)),
            Err(_) => Err(Error::Timeout {
                request,
                name: name.to_owned(),
                after_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// One non-recursive LIST of `prefix` (the top level when `None`).
    pub async fn list_dir(&self, prefix: Option<&str>) -> Result<ListResult, Error> {
        let path = prefix.map(Path::from);
        let name = prefix.unwrap_or("/");
        self.request("list", name, self.store.list_with_delimiter(path.as_ref()))
            .await
    }

    /// Every object under `prefix`, recursively (a paginated LIST).
    pub async fn list_all(&self, prefix: &str) -> Result<Vec<ObjectMeta>, Error> {
        let path = Path::from(prefix);
        self.request("list", prefix, self.store.list(Some(&path)).try_collect())
            .await
    }

    /// GETs `name`, refusing it before reading the body when the storage reports it larger
    /// than `max`, and again if the body is.
    pub async fn get_capped(&self, name: &str, max: usize) -> Result<(Vec<u8>, ObjectMeta), Error> {
        let too_large = |size: u64| Error::TooLarge {
            name: name.to_owned(),
            size,
            max: max as u64,
        };
        let path = Path::from(name);
        let call = async {
            let result = self.store.get_opts(&path, GetOptions::default()).await?;
            if result.meta.size > max as u64 {
                return Ok(Err(too_large(result.meta.size)));
            }
            let meta = result.meta.clone();
            let bytes = result.bytes().await?;
            Ok(Ok((bytes, meta)))
        };
        let (bytes, meta) = self.request("get", name, call).await??;
        if bytes.len() > max {
            return Err(too_large(bytes.len() as u64));
        }
        Ok((bytes.to_vec(), meta))
    }

    /// PUTs `bytes` as `name` with `mode`.
    pub async fn put(&self, name: &str, bytes: Vec<u8>, mode: PutMode) -> Result<PutResult, Error> {
        let request = match mode {
            PutMode::Create => "put-create",
            PutMode::Update(_) => "put-update",
            PutMode::Overwrite => "put-overwrite",
        };
        let path = Path::from(name);
        let call = self
            .store
            .put_opts(&path, PutPayload::from(bytes), PutOptions::from(mode));
        self.request(request, name, call).await
    }

    /// DELETEs `name` (an object already gone counts as deleted).
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let path = Path::from(name);
        let call = async {
            match self.store.delete(&path).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        };
        self.request("delete", name, call).await
    }

    /// The backend `url` names, credentials from the environment.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Self::from_url_with(url, std::iter::empty::<(&str, &str)>())
    }

    /// The backend `url` names, credentials from the environment, then `options` (each
    /// builder's config keys, such as `aws_endpoint` or `azure_storage_use_emulator`) applied
    /// over them.
    pub fn from_url_with<K: AsRef<str>, V: Into<String>>(
        url: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidUrl(format!("{why} (in {})", redact(url)));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Self::folder(std::path::Path::new(url), options);
        };
        let (root, prefix) = match rest.split_once('/') {
            Some((r, p)) => (r, p.trim_matches('/')),
            None => (rest, ""),
        };
        match scheme {
            "file" => {
                if !root.is_empty() && root != "localhost" {
                    return Err(bad("a file URL names a host"));
                }
                Self::folder(std::path::Path::new(&format!("/{prefix}")), options)
            }
            "s3" | "az" | "gs" if root.is_empty() => Err(bad("no bucket or container")),
            "s3" => {
                let mut b = AmazonS3Builder::from_env().with_bucket_name(root);
                for (k, v) in options {
                    let key = k.as_ref().parse().map_err(|_| option("s3", k.as_ref()))?;
                    b = b.with_config(key, v);
                }
                Ok(Self::prefixed(
                    Arc::new(b.build().map_err(open(url))?),
                    prefix,
                    Flavor::S3,
                ))
            }
            "az" => {
                let mut b = MicrosoftAzureBuilder::from_env().with_container_name(root);
                for (k, v) in options {
                    let key = k
                        .as_ref()
                        .parse()
                        .map_err(|_| option("azure", k.as_ref()))?;
                    b = b.with_config(key, v);
                }
                let store = b.build().map_err(open(url))?;
                Ok(Self::prefixed(Arc::new(store), prefix, Flavor::Azure))
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(root);
                for (k, v) in options {
                    let key = k.as_ref().parse().map_err(|_| option("gcs", k.as_ref()))?;
                    b = b.with_config(key, v);
                }
                let store = b.build().map_err(open(url))?;
                Ok(Self::prefixed(Arc::new(store), prefix, Flavor::Gcs))
            }
            _ => Err(bad("unknown scheme (file, s3, az, gs)")),
        }
    }

    fn folder<K: AsRef<str>, V>(
        dir: &std::path::Path,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error> {
        if let Some((k, _)) = options.into_iter().next() {
            return Err(option("folder", k.as_ref()));
        }
        if !dir.is_absolute() {
            return Err(Error::InvalidUrl(format!(
                "a folder remote needs an absolute path: {}",
                dir.display()
            )));
        }
        let name = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|e| {
            let e = object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            };
            Error::storage("open", &name, e)
        })?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(open(&name))?;
        Ok(Self::new(Arc::new(store), Flavor::Folder))
    }

    fn prefixed(store: Arc<dyn ObjectStore>, prefix: &str, flavor: Flavor) -> Self {
        if prefix.is_empty() {
            Self::new(store, flavor)
        } else {
            Self::new(
                Arc::new(PrefixStore::new(store, Path::from(prefix))),
                flavor,
            )
        }
    }
}

fn open(url: &str) -> impl FnOnce(object_store::Error) -> Error + '_ {
    move |e| Error::storage("open", redact(url), e)
}

fn option(backend: &'static str, key: &str) -> Error {
    Error::InvalidOption {
        backend,
        key: key.to_owned(),
    }
}

/// The URL without anything after a `?` (a query may carry a SAS token).
fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_backends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let plain = Backend::from_url(path.to_str().unwrap()).unwrap();
        assert_eq!(plain.flavor, Flavor::Folder);
        let url = format!("file://{}", path.display());
        assert_eq!(Backend::from_url(&url).unwrap().flavor, Flavor::Folder);
        let s3 = Backend::from_url_with(
            "s3://bucket/some/prefix",
            [
                ("aws_region", "us-east-1"),
                ("aws_endpoint", "http://127.0.0.1:1"),
            ],
        )
        .unwrap();
        assert_eq!(s3.flavor, Flavor::S3);
        let az = Backend::from_url_with(
            "az://container/p",
            [
                ("azure_storage_account_name", "a"),
                ("azure_storage_use_emulator", "true"),
            ],
        )
        .unwrap();
        assert_eq!(az.flavor, Flavor::Azure);
        assert!(matches!(
            Backend::from_url("ftp://x/y"),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            Backend::from_url("s3:///p"),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            Backend::from_url("relative/dir"),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            Backend::from_url_with("s3://b", [("no_such_option", "1")]),
            Err(Error::InvalidOption { .. })
        ));
        assert!(Flavor::S3.conditional_update() && !Flavor::Folder.conditional_update());
    }
}
