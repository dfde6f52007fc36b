//! Opening the pool: URL parsing, SQLite file and pragmas, pool sizes, password redaction.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use super::{Backend, StorageError};

/// How long a SQLite writer waits for the lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;
/// Log pages after which a commit checkpoints the SQLite log itself (about 40 MB): only a
/// backstop, since the pipeline's checkpointer keeps the log far shorter from its own task.
pub(super) const SQLITE_WAL_BACKSTOP_PAGES: u32 = 10_000;
/// SQLite readers in parallel (WAL) on a small machine.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// PostgreSQL pool.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long to wait for a pooled connection (and for the first connection at start-up).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a SQLite URL points.
#[derive(Debug, PartialEq, Eq)]
enum SqliteTarget {
    /// `sqlite::memory:` and friends.
    Memory,
    /// A file.
    File(PathBuf),
}

/// The pools of a store.
pub(super) struct Pools {
    /// For reads (and every query on PostgreSQL).
    pub(super) pool: AnyPool,
    /// For writes. On a SQLite file, one connection of its own: writers wait their turn in the
    /// pool's queue and start the moment the one before commits, instead of SQLite's lock
    /// retries, which sleep 1, 2, 5, 10... ms between tries. The same pool as `pool` otherwise.
    pub(super) writer: AnyPool,
}

/// Opens the pools for `url`: the backend, the pools and the redacted URL.
pub(super) async fn open(url: &str) -> Result<(Backend, Pools, String), StorageError> {
    sqlx::any::install_default_drivers();
    let redacted = redact_url(url);
    match backend_of(url) {
        Some(Backend::Sqlite) => {
            let pools = open_sqlite(url, &redacted).await?;
            Ok((Backend::Sqlite, pools, redacted))
        }
        Some(Backend::Postgres) => {
            let pool = open_postgres(url, &redacted).await?;
            let pools = Pools {
                writer: pool.clone(),
                pool,
            };
            Ok((Backend::Postgres, pools, redacted))
        }
        None => Err(StorageError::InvalidUrl {
            url: redacted,
            reason: "unknown scheme".into(),
        }),
    }
}

/// The backend a URL names, by its scheme.
fn backend_of(url: &str) -> Option<Backend> {
    let lower = url.get(..11).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql:") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

/// The file (or memory) a SQLite URL names, read the way sqlx reads it: scheme stripped, query
/// string cut off, percent-decoded.
fn sqlite_target(url: &str) -> Result<(SqliteTarget, Option<&str>), String> {
    let rest = url.get(7..).unwrap_or_default(); // after "sqlite:"
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (database, params) = match rest.split_once('?') {
        Some((d, p)) => (d, Some(p)),
        None => (rest, None),
    };
    let in_memory = database == ":memory:"
        || params.is_some_and(|p| {
            url::form_urlencoded::parse(p.as_bytes()).any(|(k, v)| k == "mode" && v == "memory")
        });
    if in_memory {
        return Ok((SqliteTarget::Memory, params));
    }
    if database.is_empty() {
        return Err("no file path".into());
    }
    Ok((
        SqliteTarget::File(PathBuf::from(percent_decode(database)?)),
        params,
    ))
}

/// Whether a SQLite URL names an in-memory database (nothing of it outlives the pool).
pub(super) fn is_sqlite_memory(url: &str) -> bool {
    matches!(sqlite_target(url), Ok((SqliteTarget::Memory, _)))
}

/// `url` with the relative file path of a SQLite URL (`sqlite://data/a.db`, `sqlite:a.db`)
/// put under the absolute folder `base`, query string kept. Absolute paths, in-memory
/// databases, other backends, and a `base` that is not UTF-8 leave the URL as it is.
pub(crate) fn sqlite_url_relative_to(url: &str, base: &Path) -> String {
    let relative_file = backend_of(url) == Some(Backend::Sqlite)
        && matches!(sqlite_target(url), Ok((SqliteTarget::File(ref path), _)) if path.is_relative());
    let (true, Some(base)) = (relative_file, base.to_str()) else {
        return url.to_owned();
    };
    let rest = url.get(7..).unwrap_or_default(); // after "sqlite:"
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    // The URL is percent-decoded on the way in, and `?`/`#` would end its path.
    let mut escaped = String::with_capacity(base.len());
    for c in base.trim_end_matches('/').chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '?' => escaped.push_str("%3F"),
            '#' => escaped.push_str("%23"),
            c => escaped.push(c),
        }
    }
    format!("sqlite://{escaped}/{rest}")
}

/// `%XX` escapes decoded (as sqlx does for SQLite file names; `+` stays a plus).
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return Err(format!("bad percent escape at byte {i} of the path")),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the path is not UTF-8 once percent-decoded".to_owned())
}

async fn open_sqlite(url: &str, redacted: &str) -> Result<Pools, StorageError> {
    let (target, params) = sqlite_target(url).map_err(|reason| StorageError::InvalidUrl {
        url: redacted.to_owned(),
        reason,
    })?;
    let connect_err = |e: sqlx::Error| StorageError::Connect {
        url: redacted.to_owned(),
        reason: e.to_string(),
    };

    let url = with_create_mode(url, params);
    match target {
        SqliteTarget::Memory => {
            // Every connection to `sqlite::memory:` would be a different database: keep exactly
            // one, for the life of the pool.
            let options = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            let pool = sqlite_pool(options, &url).await.map_err(connect_err)?;
            Ok(Pools {
                writer: pool.clone(),
                pool,
            })
        }
        SqliteTarget::File(ref path) => {
            create_parent(path)?;
            // WAL once, on a single connection: switching needs an exclusive lock that
            // busy_timeout does not wait for, so pool connections must not race to do it.
            let mut conn = AnyConnection::connect(&url).await.map_err(connect_err)?;
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| StorageError::Connect {
                    url: redacted.to_owned(),
                    reason: format!("cannot switch to WAL mode: {e}"),
                })?;
            let _ = conn.close().await;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StorageError::Connect {
                    url: redacted.to_owned(),
                    reason: format!(
                        "SQLite refused WAL mode (journal mode stays {mode:?}); is the file on a \
                         network file system?"
                    ),
                });
            }
            let readers = AnyPoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .min_connections(1);
            let writer = AnyPoolOptions::new().max_connections(1).min_connections(1);
            Ok(Pools {
                pool: sqlite_pool(readers, &url).await.map_err(connect_err)?,
                writer: sqlite_pool(writer, &url).await.map_err(connect_err)?,
            })
        }
    }
}

/// A pool of SQLite connections to `url`, each with the service's pragmas.
async fn sqlite_pool(options: AnyPoolOptions, url: &str) -> Result<AnyPool, sqlx::Error> {
    options
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // synchronous=FULL: a commit is on disk before it returns, so an ack survives a
                // power cut. busy_timeout: writers queue instead of failing. wal_autocheckpoint:
                // a commit does not copy the log into the database (see `wal`).
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA synchronous = FULL; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = {SQLITE_WAL_BACKSTOP_PAGES};"
                )))
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// The URL with `mode=rwc` (create when missing) unless it names a mode itself.
fn with_create_mode(url: &str, params: Option<&str>) -> String {
    let has_mode =
        params.is_some_and(|p| url::form_urlencoded::parse(p.as_bytes()).any(|(k, _)| k == "mode"));
    match (params, has_mode) {
        (_, true) => url.to_owned(),
        (Some(p), false) if !p.is_empty() => format!("{url}&mode=rwc"),
        (Some(_), false) => format!("{url}mode=rwc"),
        (None, false) => format!("{url}?mode=rwc"),
    }
}

/// Creates the folder a SQLite file goes in.
fn create_parent(path: &Path) -> Result<(), StorageError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|source| StorageError::CreateDir {
                path: parent.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}

async fn open_postgres(url: &str, redacted: &str) -> Result<AnyPool, StorageError> {
    let connect_err = |reason: String| StorageError::Connect {
        url: redacted.to_owned(),
        reason: scrub(&reason, url),
    };
    // One plain connection first: the pool retries failures until its timeout and then reports
    // only "pool timed out", hiding the reason (refused, unknown database, bad password...).
    match tokio::time::timeout(ACQUIRE_TIMEOUT, AnyConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(connect_err(e.to_string())),
        Err(_) => {
            return Err(connect_err(format!(
                "no answer within {} s",
                ACQUIRE_TIMEOUT.as_secs()
            )));
        }
    }
    AnyPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| connect_err(e.to_string()))
}

/// The URL with its password (user-info password or `password=` parameter) replaced by `***`.
pub(super) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL we can take apart: keep the scheme only, the rest may hold a secret.
        return match url.split_once(':') {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}:…")
            }
            _ => "(unparseable URL)".into(),
        };
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Removes the URL's password from a message, in case a driver echoed it.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_owned();
    if let Ok(parsed) = url::Url::parse(url) {
        let mut secrets: Vec<String> = parsed.password().map(str::to_owned).into_iter().collect();
        secrets.extend(
            parsed
                .query_pairs()
                .filter(|(k, _)| k.eq_ignore_ascii_case("password"))
                .map(|(_, v)| v.into_owned()),
        );
        for secret in secrets.iter().filter(|s| s.len() >= 3) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn backends_by_scheme() {
        assert_eq!(backend_of("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(backend_of("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(backend_of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("postgresql://u@h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("mysql://u@h/db"), None);
        assert_eq!(backend_of("x"), None);
    }

    #[test]
    fn sqlite_paths() {
        let file = |p: &str| SqliteTarget::File(PathBuf::from(p));
        assert_eq!(
            sqlite_target("sqlite://data/a.db").unwrap().0,
            file("data/a.db")
        );
        assert_eq!(
            sqlite_target("sqlite:///var/lib/a.db").unwrap().0,
            file("/var/lib/a.db")
        );
        assert_eq!(
            sqlite_target("sqlite:a.db?mode=rwc").unwrap(),
            (file("a.db"), Some("mode=rwc"))
        );
        assert_eq!(
            sqlite_target("sqlite://my%20dir/a+b.db").unwrap().0,
            file("my dir/a+b.db")
        );
        assert_eq!(
            sqlite_target("sqlite::memory:").unwrap().0,
            SqliteTarget::Memory
        );
        assert_eq!(
            sqlite_target("sqlite://?mode=memory").unwrap().0,
            SqliteTarget::Memory
        );
        assert!(sqlite_target("sqlite://").is_err());
    }

    #[test]
    fn relative_sqlite_files_go_under_the_base_folder() {
        let base = Path::new("/etc/matrix-os");
        for (url, resolved) in [
            (
                "sqlite://matrix-os.db",
                "sqlite:///etc/matrix-os/matrix-os.db",
            ),
            ("sqlite://data/a.db", "sqlite:///etc/matrix-os/data/a.db"),
            (
                "sqlite:a.db?mode=rwc",
                "sqlite:///etc/matrix-os/a.db?mode=rwc",
            ),
            (
                "sqlite://my%20dir/a.db",
                "sqlite:///etc/matrix-os/my%20dir/a.db",
            ),
            ("sqlite:///var/lib/a.db", "sqlite:///var/lib/a.db"),
            (
                "sqlite:///var/lib/a.db?mode=rwc",
                "sqlite:///var/lib/a.db?mode=rwc",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
            ("sqlite://?mode=memory", "sqlite://?mode=memory"),
            ("postgres://bob@db/app", "postgres://bob@db/app"),
        ] {
            assert_eq!(sqlite_url_relative_to(url, base), resolved, "{url}");
        }
        let odd = sqlite_url_relative_to("sqlite://a.db", Path::new("/srv/50%?#/"));
        assert_eq!(odd, "sqlite:///srv/50%25%3F%23/a.db");
        assert_eq!(
            sqlite_target(&odd).unwrap().0,
            SqliteTarget::File(PathBuf::from("/srv/50%?#/a.db"))
        );
    }

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_sqlite_memory("sqlite::memory:"));
        assert!(is_sqlite_memory("sqlite://?mode=memory"));
        assert!(is_sqlite_memory("sqlite:a.db?mode=memory"));
        assert!(!is_sqlite_memory("sqlite://a.db"));
    }

    #[test]
    fn create_mode_added_once() {
        assert_eq!(
            with_create_mode("sqlite://a.db", None),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?cache=private", Some("cache=private")),
            "sqlite://a.db?cache=private&mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?mode=ro", Some("mode=ro")),
            "sqlite://a.db?mode=ro"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/app"),
            "postgres://bob:***@db:5432/app"
        );
        assert_eq!(redact_url("postgres://bob@db/app"), "postgres://bob@db/app");
        let q = redact_url("postgres://db/app?user=bob&password=s3cret&sslmode=require");
        assert!(
            !q.contains("s3cret") && q.contains("sslmode=require"),
            "{q}"
        );
        assert!(!redact_url("postgres://bob:s3cret@[bad").contains("s3cret"));
        assert_eq!(
            scrub("auth failed for s3cret", "postgres://bob:s3cret@db/app"),
            "auth failed for ***"
        );
    }
}
