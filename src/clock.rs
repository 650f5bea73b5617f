//! The wall clock. This is the only module that reads it (clippy's `disallowed-methods`
//! enforces that); everything else takes the instant as an argument, so every embargo and
//! schedule rule can be tested with exact instants.

use chrono::{DateTime, SubsecRound, Utc};

/// Now, to the millisecond.
#[allow(clippy::disallowed_methods)]
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
