//! The budget keeper: records what model calls used, and says whether a twin may call the
//! model now. Shared by the turn runner, the negotiator (which words notices with the model)
//! and the `!ai usage` / `!ai budget` commands.

use std::sync::Arc;

use ruma::{RoomId, UserId};

use super::{Exceeded, Period, TokenBudget, UsageTotals, exceeded};
use crate::{
    home::Home,
    storage::{StorageError, Store, now_ms},
    twin::TwinSettings,
};

/// Records usage and checks budgets.
#[derive(Debug, Clone)]
pub struct BudgetKeeper {
    store: Store,
    defaults: TokenBudget,
}

/// A twin's budget and what it used, now.
#[derive(Debug, Clone)]
pub struct BudgetState {
    /// The limits that apply.
    pub budget: TokenBudget,
    /// Today (UTC) and this month.
    pub periods: (Period, Period),
    /// Used today.
    pub today: UsageTotals,
    /// Used this month.
    pub this_month: UsageTotals,
}

impl BudgetState {
    /// The budget that is used up, if one is.
    pub fn exceeded(&self) -> Option<Exceeded> {
        exceeded(&self.budget, &self.periods, &self.today, &self.this_month)
    }

    /// `!ai usage`: today's and this month's use, with cache hits, and the limits.
    pub fn describe(&self) -> String {
        let limit = |limit: Option<u64>| match limit {
            Some(n) => format!("of a budget of {}", super::grouped(n)),
            None => "no budget set".to_owned(),
        };
        let mut text = format!(
            "**Tokens used**\n\n\
             - Today ({}): {}; {}\n\
             - This month ({}): {}; {}",
            &self.periods.0.key["day:".len()..],
            self.today.describe(),
            limit(self.budget.daily),
            &self.periods.1.key["month:".len()..],
            self.this_month.describe(),
            limit(self.budget.monthly),
        );
        if let Some(over) = self.exceeded() {
            text.push_str(&format!(
                "\n\n🪫 The {} budget is used up: I don't ask the model until {}. \
                 `!ai budget {} <tokens>` (or `off`) raises it.",
                over.period.kind.adjective(),
                over.period.ends(),
                over.period.kind.adjective()
            ));
        }
        text
    }
}

impl BudgetKeeper {
    /// A keeper over `store`, with the service's default limits.
    pub fn new(store: Store, defaults: TokenBudget) -> Self {
        Self { store, defaults }
    }

    /// The limits of the twin whose home is `home`: its owner's `[budget]` over the
    /// defaults. An unreadable settings file means the defaults.
    pub async fn budget_of(&self, home: Arc<Home>) -> TokenBudget {
        let owner = tokio::task::spawn_blocking(move || TwinSettings::load(&home))
            .await
            .map_err(|e| e.to_string())
            .and_then(|loaded| loaded.map_err(|e| e.to_string()));
        match owner {
            Ok(settings) => TokenBudget::resolve(self.defaults, &settings.budget),
            Err(err) => {
                tracing::warn!(%err, "twin settings unreadable; the default token budget applies");
                self.defaults
            }
        }
    }

    /// The twin's budget and what it used today and this month.
    pub async fn state(&self, twin: &UserId, home: Arc<Home>) -> Result<BudgetState, StorageError> {
        let budget = self.budget_of(home).await;
        let periods = Period::at(now_ms());
        let this_month = self
            .store
            .token_usage_since(twin, periods.1.start_ms)
            .await?;
        let today = self
            .store
            .token_usage_since(twin, periods.0.start_ms)
            .await?;
        Ok(BudgetState {
            budget,
            periods,
            today,
            this_month,
        })
    }

    /// The used-up budget that keeps the twin from calling the model now, if any (no
    /// query at all when no limit applies).
    pub async fn check(
        &self,
        twin: &UserId,
        home: Arc<Home>,
    ) -> Result<Option<Exceeded>, StorageError> {
        let budget = self.budget_of(home.clone()).await;
        if !budget.is_limited() {
            return Ok(None);
        }
        Ok(self.state(twin, home).await?.exceeded())
    }

    /// Whether the owner is still to be told that `over` is used up (true once per period).
    pub async fn claim_notice(&self, twin: &UserId, over: &Exceeded) -> Result<bool, StorageError> {
        self.store.claim_budget_notice(twin, &over.period.key).await
    }

    /// The owner changed the budget: the next time it runs out, they are told again.
    pub async fn budget_changed(&self, twin: &UserId) -> Result<(), StorageError> {
        self.store.clear_budget_notices(twin).await
    }

    /// Records what model calls used, under `key` (a turn's event id). A storage failure is
    /// logged: the turn's answer matters more than its bookkeeping.
    pub async fn record(
        &self,
        twin: &UserId,
        room: Option<&RoomId>,
        key: &str,
        usage: &UsageTotals,
    ) {
        if usage.model_calls == 0 {
            return;
        }
        if let Err(err) = self.store.record_token_usage(twin, room, key, usage).await {
            tracing::warn!(%err, %twin, "cannot record the tokens a turn used");
        }
    }
}
