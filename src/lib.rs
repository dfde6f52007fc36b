//! matrix-os: a Matrix application service that gives every user an AI twin.
//!
//! Data flows one way: an appservice transaction is stored in the inbox ([`storage`]), a room
//! session ([`room`]) picks it up and decides what to do, the [`kernel`] runs a turn against the
//! owner's file [`home`], and the resulting actions go out through the Matrix client side
//! ([`matrix`]).

pub mod a2a;
pub mod appservice;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod devenv;
pub mod home;
pub mod installation;
pub mod kernel;
pub mod matrix;
pub mod metrics;
pub mod policy;
pub mod protocol;
pub mod registration;
pub mod room;
pub mod secret;
pub mod service;
pub mod storage;
pub mod twin;
