//! pressroom: a press-release distribution service. The modules read as the pipeline:
//! config and releases are parsed and validated, the planner says what is public at an
//! instant, renderers turn releases into pages and feeds, and the output writer puts them
//! on disk atomically. See ARCHITECTURE.md for the map.

pub mod build;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contact;
pub mod core;
pub mod cores;
pub mod daemon;
pub mod diagnostic;
pub mod digest;
pub mod http;
pub mod lang;
pub mod ledger;
pub mod log;
pub mod mail;
pub mod media;
pub mod optout;
pub mod output;
pub mod planner;
pub mod publish;
pub mod release;
pub mod render;
pub mod scaffold;
pub mod schema;
pub mod search;
pub mod subscriber;
pub mod time;
pub mod topic;
