//! Operation handlers, grouped by resource.

pub mod acl;
pub mod bucket;
pub mod cors;
pub mod delete;
pub mod lifecycle;
pub mod list;
pub mod lock;
pub mod multipart;
pub mod object;
pub mod passthrough;
pub mod policy;
pub mod remote;
pub mod tagging;
