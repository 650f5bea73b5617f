//! Mail: one personal message per (release, recipient). `compose` builds it with lettre's
//! message builder from the built-in (or overridden) `mail.txt` and `mail.html` templates.

pub mod compose;
pub mod dkim;
pub mod queue;
pub mod rate;
pub mod sender;
pub mod transport;

pub use compose::{Composed, Kind, Letter, Prepared, Transfer, compose, message_id};
