//! Room sessions: what happens to one event in one room. The event (parsed once by the
//! pipeline's reader) is decrypted when needed, recorded (members, recent messages, the twins'
//! own events), decided on by the pure [`decide`] and its actions handed to the stage that
//! does each: joins and declines here, turns to the turn runner, commands and pairing to their
//! runners, protocol events to the negotiator.

pub mod command;
mod commands;
pub mod decide;
mod decrypt;
pub mod event;
mod facts;
pub mod limits;
mod membership;
mod pairing;
mod portal;
mod session;

pub use self::{
    commands::CommandRunner,
    pairing::Pairing,
    session::{RoomSession, SessionParts},
};
pub use crate::outbox::render_markdown;
use crate::{crypto::CryptoError, matrix::MatrixError, twin::TwinError};

/// Messages kept per room for group context.
const ROOM_LOG_KEEP: i64 = 200;

/// An action failed.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The homeserver refused or was unreachable.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// The twin could not be made ready.
    #[error(transparent)]
    Twin(#[from] TwinError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The home failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// Encryption failed: nothing was sent.
    #[error("encryption failed, nothing was sent: {0}")]
    Crypto(#[from] CryptoError),
    /// A blocking task died.
    #[error("internal: {0}")]
    Internal(String),
}

impl RoomError {
    /// Whether trying again later can help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Matrix(err)
            | Self::Twin(TwinError::Matrix(err))
            | Self::Crypto(CryptoError::Matrix(err)) => err.is_transient(),
            Self::Storage(_) | Self::Twin(TwinError::Storage(_)) => true,
            _ => false,
        }
    }

    /// A short, fixed text for a room: what kind of thing failed, never the details (those go
    /// to the logs only; a room may hold people other than the owner).
    pub fn room_text(&self) -> &'static str {
        match self {
            Self::Matrix(_) | Self::Twin(TwinError::Matrix(_)) => {
                "the homeserver did not accept it"
            }
            Self::Crypto(_) | Self::Twin(TwinError::Crypto(_)) => "encryption failed",
            Self::Storage(_) | Self::Twin(TwinError::Storage(_)) => "my database failed",
            Self::Home(_) | Self::Twin(TwinError::Home(_)) => "my files could not be changed",
            Self::Twin(_) | Self::Internal(_) => "an internal error happened",
        }
    }
}
