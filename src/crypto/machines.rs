//! The open Olm machines: opened when a twin has work, closed when it has been idle for a
//! while. Each twin has its own slot, so opening one twin's machine (which talks to the
//! homeserver) never holds up another's.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use ruma::{OwnedUserId, UserId};

use super::machine::TwinMachine;
use crate::storage::now_ms;

/// One twin's machine, when open.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// Held while the machine is opened, replaced or closed.
    pub(super) machine: tokio::sync::Mutex<Option<Arc<TwinMachine>>>,
    /// Last use, Unix milliseconds.
    last_used: AtomicI64,
}

impl Slot {
    pub(super) fn touch(&self) {
        self.last_used.store(now_ms(), Ordering::Relaxed);
    }
}

/// Every twin's slot.
#[derive(Debug, Default)]
pub(super) struct Machines {
    slots: Mutex<HashMap<OwnedUserId, Arc<Slot>>>,
}

impl Machines {
    /// The twin's slot (made when missing). The map is only locked for the lookup.
    pub(super) fn slot(&self, twin: &UserId) -> Arc<Slot> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = slots.entry(twin.to_owned()).or_default().clone();
        slot.touch();
        slot
    }

    /// The twin's machine if it is open and nobody is opening or closing it, without counting
    /// this as a use: device-list news for every open machine must not keep them all open.
    pub(super) fn if_open(&self, twin: &UserId) -> Option<Arc<TwinMachine>> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(twin)
            .cloned()?;
        // Locked: being opened (which marks every tracked user dirty anyway) or closed.
        slot.machine.try_lock().ok()?.clone()
    }

    /// Twins whose machine is open now.
    pub(super) fn open_twins(&self) -> Vec<OwnedUserId> {
        let slots: Vec<(OwnedUserId, Arc<Slot>)> = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(twin, slot)| (twin.clone(), slot.clone()))
            .collect();
        slots
            .into_iter()
            .filter(|(_, slot)| {
                slot.machine
                    .try_lock()
                    .map(|machine| machine.is_some())
                    // Being opened or used right now: count it as open.
                    .unwrap_or(true)
            })
            .map(|(twin, _)| twin)
            .collect()
    }

    /// How many machines are open.
    pub(super) fn open_count(&self) -> usize {
        self.open_twins().len()
    }

    /// Closes machines idle for longer than `idle` that nobody is using; returns how many.
    pub(super) fn close_idle(&self, idle: Duration) -> usize {
        let cutoff = now_ms().saturating_sub(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX));
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut closed = 0;
        slots.retain(|twin, slot| {
            // Someone holds the slot (about to open or use its machine): keep both, or a second
            // machine could be opened on the same store.
            if slot.last_used.load(Ordering::Relaxed) > cutoff || Arc::strong_count(slot) > 1 {
                return true;
            }
            let Ok(mut machine) = slot.machine.try_lock() else {
                return true;
            };
            match machine.as_ref() {
                // Still in use by a send or a decryption that holds it.
                Some(open) if Arc::strong_count(open) > 1 => true,
                Some(_) => {
                    // Nobody else holds it: close its store's connections, then drop it.
                    if let Some(open) = machine.take() {
                        tokio::spawn(async move { open.close().await });
                    }
                    closed += 1;
                    tracing::debug!(%twin, "closed an idle twin's crypto");
                    false
                }
                None => false,
            }
        });
        closed
    }
}
