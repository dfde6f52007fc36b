//! The full-text index: SQLite FTS5 in memory, built from the entries for each search.

use sqlx::{Connection, Row, SqliteConnection};

use super::{Entry, MAX_RESULTS, MemoryError};

/// Most words of the query that are searched for.
const MAX_QUERY_WORDS: usize = 32;

/// Common words that say nothing about what to find.
const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "your", "all", "any", "can", "had", "has",
    "have", "her", "his", "him", "its", "our", "out", "was", "were", "what", "when", "where",
    "who", "why", "how", "with", "this", "that", "these", "those", "from", "they", "them", "then",
    "than", "there", "their", "will", "would", "could", "should", "about", "into", "does", "did",
    "just", "also", "some", "very", "much", "more", "most", "tell", "please", "know", "remember",
];

/// The entries that best match the words of `query` (BM25), best first, at most `limit`.
pub async fn search(
    entries: &[Entry],
    query: &str,
    limit: usize,
) -> Result<Vec<Entry>, MemoryError> {
    let Some(query) = fts_query(query) else {
        return Ok(Vec::new());
    };
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let index = |e: sqlx::Error| MemoryError::Index(e.to_string());
    let mut db = SqliteConnection::connect("sqlite::memory:")
        .await
        .map_err(index)?;
    sqlx::query("CREATE VIRTUAL TABLE memory USING fts5(text, tokenize = 'porter unicode61')")
        .execute(&mut db)
        .await
        .map_err(index)?;
    let mut tx = db.begin().await.map_err(index)?;
    for (i, entry) in entries.iter().enumerate() {
        sqlx::query("INSERT INTO memory (rowid, text) VALUES ($1, $2)")
            .bind(i64::try_from(i).unwrap_or(i64::MAX))
            .bind(&entry.text)
            .execute(&mut *tx)
            .await
            .map_err(index)?;
    }
    tx.commit().await.map_err(index)?;
    let rows = sqlx::query(
        "SELECT rowid FROM memory WHERE memory MATCH $1 ORDER BY bm25(memory) LIMIT $2",
    )
    .bind(&query)
    .bind(i64::try_from(limit.min(MAX_RESULTS)).unwrap_or(1))
    .fetch_all(&mut db)
    .await
    .map_err(index)?;
    let _ = db.close().await;
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get::<i64, _>(0).ok())
        .filter_map(|i| usize::try_from(i).ok())
        .filter_map(|i| entries.get(i).cloned())
        .collect())
}

/// An FTS5 query matching any of the telling words of `text`, each quoted (so nothing in
/// `text` is FTS syntax); `None` without such words.
pub(super) fn fts_query(text: &str) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
    {
        let long_enough = word.chars().count() >= 3 || (!word.is_ascii() && !word.is_empty());
        if long_enough && !STOP_WORDS.contains(&word.as_str()) && !words.contains(&word) {
            words.push(word);
        }
        if words.len() == MAX_QUERY_WORDS {
            break;
        }
    }
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    })
}
