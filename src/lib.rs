//! pressroom: a press-release distribution service. The modules read as the pipeline:
//! config and releases are parsed and validated, the planner says what is public at an
//! instant, renderers turn releases into pages and feeds, and the output writer puts them
//! on disk atomically. See ARCHITECTURE.md for the map.

pub mod config;
pub mod diagnostic;
pub mod planner;
pub mod release;
pub mod schema;
pub mod time;
