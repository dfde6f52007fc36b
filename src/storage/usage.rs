//! Tokens used per turn (for budgets and `!ai usage`), and the budget notices sent.

use ruma::{RoomId, UserId};
use sqlx::Row;

use super::{StorageError, Store, now_ms};
use crate::budget::UsageTotals;

impl Store {
    /// Adds what a turn's model calls used. `key` names the turn (its event id; another key
    /// for model calls outside turns); a second record under the same key adds to the first.
    pub async fn record_token_usage(
        &self,
        twin_id: &UserId,
        room_id: Option<&RoomId>,
        key: &str,
        usage: &UsageTotals,
    ) -> Result<(), StorageError> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO token_usage (twin_id, room_id, event_id, created_at, input_tokens, \
             output_tokens, cache_read_tokens, cache_write_tokens, model_calls) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (twin_id, event_id) DO UPDATE SET \
             input_tokens = token_usage.input_tokens + excluded.input_tokens, \
             output_tokens = token_usage.output_tokens + excluded.output_tokens, \
             cache_read_tokens = token_usage.cache_read_tokens + excluded.cache_read_tokens, \
             cache_write_tokens = token_usage.cache_write_tokens + excluded.cache_write_tokens, \
             model_calls = token_usage.model_calls + excluded.model_calls",
        )
        .bind(twin_id.as_str())
        .bind(room_id.map_or("", |r| r.as_str()))
        .bind(key)
        .bind(now_ms())
        .bind(n(usage.input_tokens))
        .bind(n(usage.output_tokens))
        .bind(n(usage.cache_read_tokens))
        .bind(n(usage.cache_write_tokens))
        .bind(n(usage.model_calls))
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("recording tokens of {twin_id}"), &e))?;
        Ok(())
    }

    /// Tokens `twin_id` used from `since_ms` (ms since the epoch) on.
    pub async fn token_usage_since(
        &self,
        twin_id: &UserId,
        since_ms: i64,
    ) -> Result<UsageTotals, StorageError> {
        let context = || format!("reading tokens used by {twin_id}");
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(model_calls), 0) AS BIGINT) \
             FROM token_usage WHERE twin_id = $1 AND created_at >= $2",
        )
        .bind(twin_id.as_str())
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StorageError::query(context(), &e))?;
        let get = |i: usize| -> Result<u64, StorageError> {
            let v: i64 = row
                .try_get(i)
                .map_err(|e| StorageError::query(context(), &e))?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok(UsageTotals {
            input_tokens: get(0)?,
            output_tokens: get(1)?,
            cache_read_tokens: get(2)?,
            cache_write_tokens: get(3)?,
            model_calls: get(4)?,
        })
    }

    /// Claims the budget notice of `period` for `twin_id`: true the first time only, so the
    /// owner is told once per period, across restarts.
    pub async fn claim_budget_notice(
        &self,
        twin_id: &UserId,
        period: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO budget_notices (twin_id, period, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (twin_id, period) DO NOTHING",
        )
        .bind(twin_id.as_str())
        .bind(period)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("recording a budget notice of {twin_id}"), &e)
        })?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets the budget notices of `twin_id` (its owner raised the budget: the next time it
    /// runs out, they are told again).
    pub async fn clear_budget_notices(&self, twin_id: &UserId) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM budget_notices WHERE twin_id = $1")
            .bind(twin_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("clearing budget notices of {twin_id}"), &e)
            })?;
        Ok(())
    }
}
