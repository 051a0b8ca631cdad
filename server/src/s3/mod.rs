//! The S3 front end: routing, authentication, payloads, XML, errors and the operation handlers.

pub mod access;
pub mod auth;
pub mod call;
pub mod checksum;
pub mod conditional;
pub mod ctx;
pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod op;
pub mod params;
pub mod payload;
pub mod post;
pub mod range;
pub mod unimplemented;
pub mod xml;

pub use call::{Call, read_error};
pub use ctx::{Ctx, S3Config};
