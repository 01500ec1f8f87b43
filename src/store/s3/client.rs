//! The S3 client of one map: `object_store`'s `AmazonS3`, driven from the
//! synchronous `Store` API by a private current-thread tokio runtime.
//!
//! - Every call ends in `Driver::block_on`. When the calling thread is itself
//!   inside a tokio runtime (where a nested `block_on` would panic), the
//!   future runs on a scoped helper thread instead.
//! - After `fork()`, the child must not touch the runtime or the connections
//!   it inherited (they share the parent's epoll instance and sockets). The
//!   driver notices the new process id, leaks the inherited client and
//!   runtime untouched, and builds fresh ones.
//! - Every HTTP request (retries included) is counted by kind, per map and
//!   process-wide (`RequestCounts`), through a counting `HttpConnector`.
//! - Retries are bounded (`RETRY`): a stopped server gives a clean error in
//!   well under ten seconds.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, RetryConfig};

use super::url::S3Location;
use crate::error::{Error, Result};

/// At most 3 retries, backing off 50 ms .. 1 s, never retrying after 5 s.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(5),
    }
}
/// Connecting takes at most this long (per attempt).
const CONNECT_TIMEOUT: &str = "3s";
/// One request (headers and body) takes at most this long (per attempt).
const REQUEST_TIMEOUT: &str = "60s";

/// HTTP requests sent, by kind. Every attempt counts, retries included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// HEAD object (len, exists, checks).
    pub head: u64,
    /// GET object (reads; whole-object loads for read-modify-write).
    pub get: u64,
    /// ListObjectsV2 pages.
    pub list: u64,
    /// PUT object (single-request uploads).
    pub put: u64,
    /// CreateMultipartUpload.
    pub multipart_start: u64,
    /// UploadPart.
    pub part: u64,
    /// CompleteMultipartUpload.
    pub multipart_complete: u64,
    /// DELETE object, and AbortMultipartUpload.
    pub delete: u64,
    /// DeleteObjects (up to 1000 keys each).
    pub bulk_delete: u64,
    /// Anything else.
    pub other: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.head
            + self.get
            + self.list
            + self.put
            + self.multipart_start
            + self.part
            + self.multipart_complete
            + self.delete
            + self.bulk_delete
            + self.other
    }

    /// Objects uploaded: PUTs plus completed multipart uploads.
    pub fn uploads(&self) -> u64 {
        self.put + self.multipart_complete
    }

    /// The counts since `earlier`.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            head: self.head - earlier.head,
            get: self.get - earlier.get,
            list: self.list - earlier.list,
            put: self.put - earlier.put,
            multipart_start: self.multipart_start - earlier.multipart_start,
            part: self.part - earlier.part,
            multipart_complete: self.multipart_complete - earlier.multipart_complete,
            delete: self.delete - earlier.delete,
            bulk_delete: self.bulk_delete - earlier.bulk_delete,
            other: self.other - earlier.other,
        }
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: {} HEAD, {} GET, {} LIST, {} PUT, {} multipart \
             ({} parts, {} completed), {} DELETE, {} bulk DELETE, {} other",
            self.total(),
            self.head,
            self.get,
            self.list,
            self.put,
            self.multipart_start,
            self.part,
            self.multipart_complete,
            self.delete,
            self.bulk_delete,
            self.other
        )
    }
}

/// Live request counters (one per map, one for the process).
#[derive(Debug, Default)]
pub struct Counters {
    head: AtomicU64,
    get: AtomicU64,
    list: AtomicU64,
    put: AtomicU64,
    multipart_start: AtomicU64,
    part: AtomicU64,
    multipart_complete: AtomicU64,
    delete: AtomicU64,
    bulk_delete: AtomicU64,
    other: AtomicU64,
}

/// Every S3 request of this process.
pub static PROCESS_COUNTS: Counters = Counters {
    head: AtomicU64::new(0),
    get: AtomicU64::new(0),
    list: AtomicU64::new(0),
    put: AtomicU64::new(0),
    multipart_start: AtomicU64::new(0),
    part: AtomicU64::new(0),
    multipart_complete: AtomicU64::new(0),
    delete: AtomicU64::new(0),
    bulk_delete: AtomicU64::new(0),
    other: AtomicU64::new(0),
};

impl Counters {
    fn slot(&self, method: &str, query: Option<&str>) -> &AtomicU64 {
        let has = |name: &str| {
            query.is_some_and(|q| {
                q.split('&')
                    .any(|pair| pair.split('=').next() == Some(name))
            })
        };
        match method {
            "HEAD" => &self.head,
            "GET" if has("list-type") => &self.list,
            "GET" => &self.get,
            "PUT" if has("uploadId") => &self.part,
            "PUT" => &self.put,
            "POST" if has("uploads") => &self.multipart_start,
            "POST" if has("uploadId") => &self.multipart_complete,
            "POST" if has("delete") => &self.bulk_delete,
            "DELETE" => &self.delete,
            _ => &self.other,
        }
    }

    fn record(&self, method: &str, query: Option<&str>) {
        self.slot(method, query).fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RequestCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RequestCounts {
            head: get(&self.head),
            get: get(&self.get),
            list: get(&self.list),
            put: get(&self.put),
            multipart_start: get(&self.multipart_start),
            part: get(&self.part),
            multipart_complete: get(&self.multipart_complete),
            delete: get(&self.delete),
            bulk_delete: get(&self.bulk_delete),
            other: get(&self.other),
        }
    }
}

/// Makes reqwest clients that count what they send.
#[derive(Debug)]
struct CountingConnector {
    counters: Arc<Counters>,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService {
            inner,
            counters: self.counters.clone(),
        }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl HttpService for CountingService {
    async fn call(&self, req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let method = req.method().as_str().to_string();
        let query = req.uri().query().map(str::to_string);
        self.counters.record(&method, query.as_deref());
        PROCESS_COUNTS.record(&method, query.as_deref());
        let response = self.inner.execute(req).await;
        if let Ok(r) = &response {
            if matches!(r.status().as_u16(), 401 | 403) {
                let _ = DENIED.try_with(|denied| denied.store(true, Ordering::Relaxed));
            }
        }
        response
    }
}

tokio::task_local! {
    /// Set when a response of the current call said 401 or 403.
    static DENIED: Arc<AtomicBool>;
}

/// Runs `future`, telling whether the server refused a request of it
/// (401/403). `object_store` reports some refusals (e.g. of a LIST) only as
/// generic errors; this keeps them `NC_EAUTH`.
pub async fn watching_denials<F: Future>(future: F) -> (F::Output, bool) {
    let denied = Arc::new(AtomicBool::new(false));
    let output = DENIED.scope(denied.clone(), future).await;
    (output, denied.load(Ordering::Relaxed))
}

/// A runtime and a client, valid in the process that made them.
struct Live {
    pid: u32,
    runtime: Option<tokio::runtime::Runtime>,
    s3: Option<Arc<AmazonS3>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // Inherited through fork(): dropping would deregister sockets
            // from the epoll instance the parent still uses. Leak instead.
            std::mem::forget(self.s3.take());
            std::mem::forget(self.runtime.take());
            return;
        }
        drop(self.s3.take());
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so it is also fine inside another runtime.
            runtime.shutdown_background();
        }
    }
}

/// The runtime and client of one map.
pub struct Driver {
    location: S3Location,
    counters: Arc<Counters>,
    live: Mutex<Option<Arc<Live>>>,
}

impl Driver {
    pub fn new(location: S3Location, counters: Arc<Counters>) -> Result<Driver> {
        let driver = Driver {
            location,
            counters,
            live: Mutex::new(None),
        };
        driver.live()?;
        Ok(driver)
    }

    /// The runtime and client for this process, made on first use and again
    /// after a fork.
    fn live(&self) -> Result<Arc<Live>> {
        let mut slot = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if let Some(live) = slot.as_ref() {
            if live.pid == pid {
                return Ok(live.clone());
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::S3(format!("cannot start the S3 I/O runtime: {e}")))?;
        let s3 = {
            let _context = runtime.enter();
            build_client(&self.location, self.counters.clone())?
        };
        let live = Arc::new(Live {
            pid,
            runtime: Some(runtime),
            s3: Some(Arc::new(s3)),
        });
        // An inherited `Live` (other pid) is dropped here: its Drop leaks it.
        *slot = Some(live.clone());
        Ok(live)
    }

    /// The client, for building a future to pass to `block_on`.
    pub fn client(&self) -> Result<Arc<AmazonS3>> {
        let live = self.live()?;
        live.s3
            .clone()
            .ok_or(Error::Internal("S3 client already shut down"))
    }

    /// Runs `future` to completion on this map's runtime.
    pub fn block_on<T: Send>(&self, future: impl Future<Output = T> + Send) -> Result<T> {
        let live = self.live()?;
        let runtime = live
            .runtime
            .as_ref()
            .ok_or(Error::Internal("S3 runtime already shut down"))?;
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside someone's runtime: a nested block_on would panic.
            std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name("zmap-s3".into())
                    .spawn_scoped(scope, || runtime.block_on(future))
                    .map_err(Error::Io)?
                    .join()
                    .map_err(|_| Error::Internal("panic on the S3 I/O thread"))
            })
        } else {
            Ok(runtime.block_on(future))
        }
    }
}

fn build_client(location: &S3Location, counters: Arc<Counters>) -> Result<AmazonS3> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
    if let Some(endpoint) = &location.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(allow) = location.allow_http {
        builder = builder.with_allow_http(allow);
    }
    if let Some(region) = &location.region {
        builder = builder.with_region(region);
    }
    builder
        .with_retry(retry_config())
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            CONNECT_TIMEOUT,
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            REQUEST_TIMEOUT,
        )
        .with_http_connector(CountingConnector { counters })
        .build()
        .map_err(|e| Error::S3(e.to_string()))
}

/// `object_store` errors as this crate's: not found → `Empty`, refused
/// credentials → `Auth`, anything else → `S3` (`NC_ES3`).
pub fn s3_error(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::Empty,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => Error::Auth,
        other => Error::S3(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified() {
        let c = Counters::default();
        c.record("HEAD", None);
        c.record("GET", Some("list-type=2&prefix=a%2F"));
        c.record("GET", None);
        c.record("PUT", None);
        c.record("POST", Some("uploads"));
        c.record("PUT", Some("partNumber=1&uploadId=x"));
        c.record("POST", Some("uploadId=x"));
        c.record("POST", Some("delete"));
        c.record("DELETE", None);
        c.record("PATCH", None);
        let s = c.snapshot();
        assert_eq!(
            s,
            RequestCounts {
                head: 1,
                get: 1,
                list: 1,
                put: 1,
                multipart_start: 1,
                part: 1,
                multipart_complete: 1,
                delete: 1,
                bulk_delete: 1,
                other: 1,
            }
        );
        assert_eq!(s.total(), 10);
        assert_eq!(s.uploads(), 2);
        assert_eq!(s.since(&s).total(), 0);
        assert!(s.to_string().starts_with("10 requests"));
    }
}
