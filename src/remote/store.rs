//! Where a shard URL points: an object store (`http(s)://`, `s3://`, `gs://`, `az://`, through
//! the `object_store` crate, credentials from the usual environment variables) or a command's
//! output (`pipe:CMD`, as WebDataset has it). Whole objects are fetched; retries and backoff
//! are the cache's.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ClientOptions, ObjectStore};

/// What identifies a remote object's content: its size and, where the server gives one, its
/// ETag (else its modification time).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// Bytes.
    pub size: u64,
    /// ETag or modification time; empty for `pipe:` commands.
    pub version: String,
}

/// A failed request: whether trying again may help, and what happened.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) transient: bool,
    pub(crate) message: String,
}

impl Failure {
    fn of(e: object_store::Error) -> Self {
        Failure {
            transient: !matches!(e, object_store::Error::NotFound { .. }),
            message: e.to_string(),
        }
    }

    pub(crate) fn io(e: std::io::Error) -> Self {
        Failure {
            transient: false,
            message: e.to_string(),
        }
    }
}

/// The runtime that drives object_store's requests (its clients are async).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("augloader-fetch")
            .enable_all()
            .build()
            .expect("a tokio runtime for shard fetches")
    })
}

/// One URL's object.
#[derive(Clone)]
pub(crate) enum Object {
    Store(Arc<dyn ObjectStore>, StorePath),
    Pipe(String),
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Object::Store(s, p) => write!(f, "{s}/{p}"),
            Object::Pipe(c) => write!(f, "pipe:{c}"),
        }
    }
}

/// Whether `s` names a remote shard (a URL of a scheme read here, or `pipe:`).
pub fn is_url(s: &str) -> bool {
    s.starts_with("pipe:")
        || [
            "http://", "https://", "s3://", "gs://", "az://", "azure://", "abfs://",
        ]
        .iter()
        .any(|p| s.starts_with(p))
}

/// The object `url` names, with a request timeout of `timeout`.
pub(crate) fn open(url: &str, timeout: Duration) -> Result<Object, String> {
    if let Some(cmd) = url.strip_prefix("pipe:") {
        return Ok(Object::Pipe(cmd.to_string()));
    }
    let bad = |e: object_store::Error| format!("{url}: {e}");
    // Retries are the cache's (whole objects, with backoff): one try per request here.
    let retry = object_store::RetryConfig {
        max_retries: 0,
        ..Default::default()
    };
    let client = ClientOptions::new()
        .with_timeout(timeout)
        .with_allow_http(true);
    let (scheme, rest) = url.split_once("://").ok_or(format!("{url}: not a URL"))?;
    let (store, key): (Arc<dyn ObjectStore>, &str) = match scheme {
        "http" | "https" => {
            // The server's root serves the path as it is.
            let (host, key) = rest.split_once('/').unwrap_or((rest, ""));
            let s = object_store::http::HttpBuilder::new()
                .with_url(format!("{scheme}://{host}"))
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(bad)?;
            (Arc::new(s), key)
        }
        "s3" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client);
            // AWS_ENDPOINT_URL, as the AWS command line reads it (AWS_ENDPOINT is read above).
            if std::env::var_os("AWS_ENDPOINT").is_none() {
                if let Ok(e) = std::env::var("AWS_ENDPOINT_URL") {
                    b = b
                        .with_endpoint(&e)
                        .with_allow_http(e.starts_with("http://"));
                }
            }
            (Arc::new(b.build().map_err(bad)?), bucket_key(rest))
        }
        "gs" => {
            let b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client);
            (Arc::new(b.build().map_err(bad)?), bucket_key(rest))
        }
        "az" | "azure" | "abfs" => {
            let b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client);
            (Arc::new(b.build().map_err(bad)?), bucket_key(rest))
        }
        _ => return Err(format!("{url}: unknown scheme {scheme}://")),
    };
    let path = StorePath::parse(key).map_err(|e| format!("{url}: {e}"))?;
    Ok(Object::Store(store, path))
}

/// The key after `bucket/`.
fn bucket_key(rest: &str) -> &str {
    rest.split_once('/').map_or("", |(_, k)| k)
}

impl Object {
    /// Size and version, without the content (`None` for commands: known only once run).
    pub(crate) fn head(&self) -> Result<Option<Meta>, Failure> {
        match self {
            Object::Pipe(_) => Ok(None),
            Object::Store(s, p) => {
                let m = runtime().block_on(s.head(p)).map_err(Failure::of)?;
                Ok(Some(Meta {
                    size: m.size,
                    version: m.e_tag.unwrap_or_else(|| m.last_modified.to_rfc3339()),
                }))
            }
        }
    }

    /// The whole object, written to `out`; its size and version as the response gave them.
    pub(crate) fn fetch_to(&self, out: &mut std::fs::File) -> Result<Meta, Failure> {
        match self {
            Object::Pipe(cmd) => pipe_to(cmd, out),
            Object::Store(s, p) => runtime().block_on(async {
                let r = s.get(p).await.map_err(Failure::of)?;
                let meta = Meta {
                    size: r.meta.size,
                    version: r
                        .meta
                        .e_tag
                        .clone()
                        .unwrap_or_else(|| r.meta.last_modified.to_rfc3339()),
                };
                let mut stream = r.into_stream();
                let mut written = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(Failure::of)?;
                    out.write_all(&chunk).map_err(Failure::io)?;
                    written += chunk.len() as u64;
                }
                if written != meta.size {
                    return Err(Failure {
                        transient: true,
                        message: format!("{written} of {} bytes arrived", meta.size),
                    });
                }
                Ok(meta)
            }),
        }
    }

    /// A small object beside the shards (`classes.txt`, an index); `None` where there is none.
    pub(crate) fn fetch_small(&self, limit: u64) -> Result<Option<Vec<u8>>, Failure> {
        let Object::Store(s, p) = self else {
            return Ok(None);
        };
        runtime().block_on(async {
            let r = match s.get(p).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(Failure::of(e)),
            };
            if r.meta.size > limit {
                return Ok(None);
            }
            Ok(Some(r.bytes().await.map_err(Failure::of)?.to_vec()))
        })
    }
}

/// Runs `cmd` with `sh -c`, its standard output written to `out`.
fn pipe_to(cmd: &str, out: &mut std::fs::File) -> Result<Meta, Failure> {
    let fail = |message: String| Failure {
        transient: false,
        message,
    };
    let mut child = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not run: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped");
    let size = std::io::copy(&mut stdout, out).map_err(Failure::io)?;
    let status = child.wait().map_err(Failure::io)?;
    if !status.success() {
        return Err(fail(format!("the command exited with {status}")));
    }
    Ok(Meta {
        size,
        version: String::new(),
    })
}

/// `base`'s sibling `name`: the URL with its last path segment replaced.
pub(crate) fn sibling(url: &str, name: &str) -> Option<String> {
    if url.starts_with("pipe:") {
        return None;
    }
    let (dir, _) = url.rsplit_once('/')?;
    Some(format!("{dir}/{name}"))
}
