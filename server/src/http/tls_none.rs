//! Built without the `tls` feature (the fuzz targets): no HTTPS; a configuration naming a
//! certificate is refused at start.

use std::path::Path;

use compio::BufResult;
use compio::buf::{IoBuf, IoBufMut};
use compio::net::TcpStream;

/// Never made: HTTPS is not built in.
#[derive(Debug)]
pub enum Tls {}

/// Never made: HTTPS is not built in.
#[derive(Debug)]
pub enum TlsStream {}

impl Tls {
    pub fn load(_cert: &Path, _key: &Path) -> Result<Tls, String> {
        Err("this keel was built without HTTPS (the `tls` feature)".into())
    }

    pub fn reload(&self) -> Result<(), String> {
        match *self {}
    }

    pub async fn accept(&self, _stream: TcpStream) -> std::io::Result<TlsStream> {
        match *self {}
    }
}

impl compio::io::AsyncRead for TlsStream {
    async fn read<B: IoBufMut>(&mut self, _buf: B) -> BufResult<usize, B> {
        match *self {}
    }
}

impl compio::io::AsyncWrite for TlsStream {
    async fn write<T: IoBuf>(&mut self, _buf: T) -> BufResult<usize, T> {
        match *self {}
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match *self {}
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match *self {}
    }
}

/// Never made: HTTPS is not built in.
pub type ClientStream = std::net::TcpStream;

pub fn connect_blocking(_addr: &str) -> Result<ClientStream, String> {
    Err("this keel was built without HTTPS (the `tls` feature): use an http:// endpoint".into())
}
