//! Our HTTP/1.1 shell (DESIGN D2): head parsing on httparse, body framing, responses.

pub mod chunked;
pub mod conn;
pub mod deadline;
pub mod request;
pub mod response;
pub mod send;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(not(feature = "tls"))]
#[path = "tls_none.rs"]
pub mod tls;
pub mod uri;
pub mod value;

pub use conn::Conn;
pub use request::{Framing, Method, Request};
pub use response::{Body, Relay, Response, Span};
pub use value::HeaderValue;
