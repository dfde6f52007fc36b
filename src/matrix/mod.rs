//! The Matrix client side: calls to the homeserver as the appservice or as a twin.

mod actions;
mod client;
mod error;
mod ids;
mod media;
mod txn;

pub use self::{
    client::{MatrixClient, RetryPolicy},
    error::MatrixError,
    ids::TwinNaming,
    media::Downloaded,
    txn::{TxnPart, txn_id_for},
};
