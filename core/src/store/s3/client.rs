//! The S3 client of the maps: `object_store`'s `AmazonS3`, driven from the
//! synchronous `Store` API by a current-thread tokio runtime.
//!
//! - One client (and runtime) per endpoint, bucket, region and `AWS_*`
//!   environment, shared by the maps of a process (`Registry`): a map opened
//!   after another reuses its pooled connections. A pooled connection is a
//!   task of the runtime that made it, hence a runtime per client rather
//!   than per map. Several threads may drive one runtime at once (tokio
//!   hands its driver from one `block_on` to the next).
//! - Every call ends in `Driver::run`. When the calling thread is itself
//!   inside a tokio runtime (where a nested `block_on` would panic), the
//!   future runs on a scoped helper thread instead.
//! - After `fork()`, the child must not touch the runtime or the connections
//!   it inherited (they share the parent's epoll instance and sockets). The
//!   driver notices the new process id, leaks the inherited client and
//!   runtime untouched, and uses fresh ones (as does the registry).
//! - Every HTTP request (retries included) is counted by kind, per map and
//!   process-wide (`RequestCounts`), through a counting `HttpConnector`; the
//!   map is the one whose call is running (a task-local).
//! - Retries are bounded (`RETRY`): a stopped server gives a clean error in
//!   well under ten seconds.

use super::profile::Profile;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
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

/// Makes reqwest clients that count what they send: process-wide always,
/// and for the map whose call is running (`CALL`, a task-local), since one
/// client serves every map of its endpoint and credentials.
#[derive(Debug)]
struct CountingConnector;

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService { inner }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
}

#[async_trait::async_trait]
impl HttpService for CountingService {
    async fn call(&self, req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let method = req.method().as_str();
        let query = req.uri().query();
        PROCESS_COUNTS.record(method, query);
        let _ = CALL.try_with(|call| call.counters.record(method, query));
        let response = self.inner.execute(req).await;
        if let Ok(r) = &response {
            if matches!(r.status().as_u16(), 401 | 403) {
                let _ = CALL.try_with(|call| call.denied.store(true, Ordering::Relaxed));
            }
        }
        response
    }
}

/// What the requests of one call report to it.
struct CallScope {
    /// The calling map's counters.
    counters: Arc<Counters>,
    /// Set when a response said 401 or 403.
    denied: AtomicBool,
}

tokio::task_local! {
    static CALL: Arc<CallScope>;
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

impl Live {
    fn new(location: &S3Location) -> Result<Live> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::S3(format!("cannot start the S3 I/O runtime: {e}")))?;
        let s3 = {
            let _context = runtime.enter();
            build_client(location)?
        };
        Ok(Live {
            pid: std::process::id(),
            runtime: Some(runtime),
            s3: Some(Arc::new(s3)),
        })
    }
}

/// Clients kept for reuse by later maps (besides those maps still use).
const SHARED_KEEP: usize = 8;

/// The clients (each with its runtime, which drives its pooled connections)
/// of one process, one per endpoint, bucket, region and `AWS_*`
/// environment: maps opened one after another reuse the client, and so its
/// connections, instead of connecting again.
///
/// After `fork()` the child must not touch what the parent made, the lock
/// included (another thread of the parent may have held it): the registry
/// is tied to the process id, and a child installs a fresh one, leaking the
/// parent's (`Live::drop` also leaks what a child drops).
struct Registry {
    pid: u32,
    /// (key, client), least recently opened first.
    clients: Mutex<Vec<(String, Arc<Live>)>>,
}

static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(std::ptr::null_mut());

fn registry() -> &'static Registry {
    let pid = std::process::id();
    loop {
        let current = REGISTRY.load(Ordering::Acquire);
        // SAFETY: a non-null pointer in REGISTRY comes from Box::leak below
        // and is never freed.
        if let Some(registry) = unsafe { current.as_ref() } {
            if registry.pid == pid {
                return registry;
            }
        }
        let fresh = Box::into_raw(Box::new(Registry {
            pid,
            clients: Mutex::new(Vec::new()),
        }));
        match REGISTRY.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // The previous registry (a parent's) is leaked.
            // SAFETY: just installed, and never freed.
            Ok(_) => return unsafe { &*fresh },
            // Another thread installed one first: ours was never shared.
            // SAFETY: `fresh` came from Box::into_raw above.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

/// What decides the client `build_client` makes for `location`.
fn client_key(location: &S3Location) -> String {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    env.sort();
    format!(
        "{:?} {:?} {:?} {:?} {env:?} {:?}",
        location.endpoint,
        location.allow_http,
        location.region,
        location.bucket,
        Profile::from_environment()
    )
}

/// The process's client for `location`, made on first use.
fn shared(location: &S3Location) -> Result<Arc<Live>> {
    let key = client_key(location);
    let mut clients = registry().clients.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = clients.iter().position(|(k, _)| *k == key) {
        let entry = clients.remove(i);
        let live = entry.1.clone();
        clients.push(entry);
        return Ok(live);
    }
    let live = Arc::new(Live::new(location)?);
    clients.push((key, live.clone()));
    if clients.len() > SHARED_KEEP {
        // Forget the least recently opened; maps still using it keep it.
        clients.remove(0);
    }
    Ok(live)
}

/// The client of one map (shared with other maps of the same endpoint and
/// credentials, see `Registry`).
pub struct Driver {
    location: S3Location,
    counters: Arc<Counters>,
    live: Mutex<Arc<Live>>,
}

impl Driver {
    pub fn new(location: S3Location, counters: Arc<Counters>) -> Result<Driver> {
        let live = shared(&location)?;
        Ok(Driver {
            location,
            counters,
            live: Mutex::new(live),
        })
    }

    /// The runtime and client for this process: after a fork, the child's.
    fn live(&self) -> Result<Arc<Live>> {
        let mut slot = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if slot.pid != std::process::id() {
            // The inherited one is dropped here: its Drop leaks it.
            *slot = shared(&self.location)?;
        }
        Ok(slot.clone())
    }

    /// Runs the future `f` makes with the client to completion, counting its
    /// requests as this map's. Also tells whether the server refused a
    /// request of it (401/403): `object_store` reports some refusals (e.g.
    /// of a LIST) only as generic errors; this keeps them `NC_EAUTH`.
    ///
    /// When the calling thread is inside a tokio runtime (where a nested
    /// `block_on` would panic), the future runs on a scoped helper thread.
    pub fn run<T, F, Fut>(&self, f: F) -> Result<(T, bool)>
    where
        T: Send,
        F: FnOnce(Arc<AmazonS3>) -> Fut,
        Fut: Future<Output = T> + Send,
    {
        let live = self.live()?;
        let (Some(runtime), Some(s3)) = (live.runtime.as_ref(), live.s3.as_ref()) else {
            return Err(Error::Internal("S3 client already shut down"));
        };
        let scope = Arc::new(CallScope {
            counters: self.counters.clone(),
            denied: AtomicBool::new(false),
        });
        let future = CALL.scope(scope.clone(), f(s3.clone()));
        let output = if tokio::runtime::Handle::try_current().is_ok() {
            // Inside someone's runtime: a nested block_on would panic.
            let quiet = crate::quiet::is_quiet();
            std::thread::scope(|threads| {
                std::thread::Builder::new()
                    .name("zmap-s3".into())
                    .spawn_scoped(threads, || {
                        crate::quiet::inherit(quiet, || runtime.block_on(future))
                    })
                    .map_err(Error::Io)?
                    .join()
                    .map_err(|_| Error::Internal("panic on the S3 I/O thread"))
            })?
        } else {
            runtime.block_on(future)
        };
        Ok((output, scope.denied.load(Ordering::Relaxed)))
    }
}

fn build_client(location: &S3Location) -> Result<AmazonS3> {
    builder(location)
        .with_http_connector(CountingConnector)
        .build()
        .map_err(|e| Error::S3(e.to_string()))
}

/// The client configuration of the maps (endpoint, path style, region,
/// retries, timeouts), before the request-counting connector.
pub fn builder(location: &S3Location) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
    // The shared files (~/.aws/credentials, ~/.aws/config) fill in what the
    // environment leaves unset.
    let unset = |names: &[&str]| {
        names
            .iter()
            .all(|n| std::env::var_os(n).is_none_or(|v| v.is_empty()))
    };
    let profile = Profile::from_environment();
    if let Some(id) = profile
        .access_key_id
        .filter(|_| unset(&["AWS_ACCESS_KEY_ID"]))
    {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = profile
        .secret_access_key
        .filter(|_| unset(&["AWS_SECRET_ACCESS_KEY"]))
    {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = profile
        .session_token
        .filter(|_| unset(&["AWS_SESSION_TOKEN", "AWS_TOKEN"]))
    {
        builder = builder.with_token(token);
    }
    if let Some(region) = profile
        .region
        .filter(|_| unset(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
    {
        builder = builder.with_region(region);
    }
    let file_endpoint = profile
        .endpoint_url
        .filter(|_| location.endpoint.is_none() && unset(&["AWS_ENDPOINT", "AWS_ENDPOINT_URL"]));
    if let Some(endpoint) = file_endpoint {
        if endpoint.starts_with("http://") && location.allow_http.is_none() {
            builder = builder.with_allow_http(true);
        }
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
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
