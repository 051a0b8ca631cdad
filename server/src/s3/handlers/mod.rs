//! Operation handlers, grouped by resource.

pub mod bucket;
pub mod list;
pub mod object;
