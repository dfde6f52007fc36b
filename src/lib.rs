//! matrix-os: a Matrix application service that gives every user an AI twin.
//!
//! Data flows one way, through stages with one job each (see [`pipeline`]): an appservice
//! transaction ([`appservice`]) is stored in the inbox ([`storage`]); the pipeline's reader
//! feeds encryption data to the twins' machines ([`crypto`]) and events to bounded room queues;
//! a room session ([`room`]) decides what to do; the turn runner ([`turns`]) runs the
//! [`kernel`] against the owner's file [`home`]; the [`negotiator`] drives meetings between
//! twins; and everything a twin says goes out through the [`outbox`].

pub mod a2a;
pub mod appservice;
pub mod bounded_body;
pub mod bridge;
pub mod budget;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod devenv;
pub mod home;
pub mod installation;
pub mod kernel;
pub mod matrix;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod negotiator;
pub mod outbox;
pub mod pipeline;
pub mod policy;
pub mod private_file;
pub mod protocol;
pub mod registration;
pub mod room;
pub mod secret;
pub mod service;
pub mod storage;
pub mod turns;
pub mod twin;
