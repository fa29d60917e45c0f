//! Fetch responses whose record data is written straight from the segment files: the frame is
//! encoded around the data (strom-protocol's spliced frames), and each file region is then either
//! handed to the kernel with sendfile(2) — the broker never reads the records (Kafka's
//! FileRecords.writeTo / transferTo) — or, for consumers on this host, read into a buffer the
//! connection reuses and written with the frame's bytes in one writev (cheaper on loopback; see
//! [`crate::config::ZeroCopy`] and `fetch.zero.copy`). Either way the records are read outside
//! the partition's lock and never copied into the frame.

use crate::dispatch::Outcome;
use crate::handlers::fetch::FetchAnswer;
use bytes::Bytes;
use std::io::{self, IoSlice};
use std::sync::Mutex;
use strom_protocol::frame::encode_response;
use strom_protocol::messages::{ApiKey, FetchResponse};
use strom_protocol::spliced::{encode_response_spliced, FramePart};
use strom_protocol::ResponseError;
use strom_storage::FileRegion;
use tokio::io::{AsyncWriteExt, BufWriter, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// A piece of a response, in wire order.
pub enum ResponsePart {
    Bytes(Bytes),
    File(FileRegion),
}

/// The Fetch response as parts: encoded bytes around file regions, which the connection sends
/// with sendfile or copies through its buffer (see [`write_parts`]). Should splicing fail (it
/// cannot for a well-formed response), the data is read and encoded into one frame.
pub fn respond_fetch(version: i16, correlation_id: i32, answer: FetchAnswer) -> Outcome {
    let FetchAnswer { mut response, regions } = answer;
    if regions.is_empty() {
        return encoded(version, correlation_id, &response);
    }
    let lens: Vec<usize> = regions.iter().map(|(_, _, rs)| rs.iter().map(|r| r.len).sum()).collect();
    let slots: Vec<(usize, usize)> = regions.iter().map(|(t, p, _)| (*t, *p)).collect();
    let set = |r: &mut FetchResponse, empty: bool| {
        for &(t, p) in &slots {
            r.responses[t].partitions[p].records = if empty { Some(Bytes::new()) } else { None };
        }
    };
    let frame = match encode_response_spliced(ApiKey::Fetch, version, correlation_id, &mut response, set, &lens) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::error!("cannot splice a Fetch v{version} response ({e}); encoding it whole");
            read_into(&mut response, regions);
            return encoded(version, correlation_id, &response);
        }
    };
    let mut files: Vec<Option<Vec<FileRegion>>> = regions.into_iter().map(|(_, _, rs)| Some(rs)).collect();
    let mut parts = Vec::with_capacity(2 * files.len() + 1);
    for part in frame {
        match part {
            FramePart::Bytes(b) => parts.push(ResponsePart::Bytes(b)),
            FramePart::Records(n) => match files.get_mut(n).and_then(Option::take) {
                Some(rs) => parts.extend(rs.into_iter().map(ResponsePart::File)),
                None => return Outcome::Close("internal error: a spliced Fetch response named a region twice".into()),
            },
        }
    }
    Outcome::RespondParts(parts)
}

/// Puts each region's data into its partition's records, or KAFKA_STORAGE_ERROR if unreadable.
fn read_into(response: &mut FetchResponse, regions: Vec<(usize, usize, Vec<FileRegion>)>) {
    for (t, p, rs) in regions {
        let pd = &mut response.responses[t].partitions[p];
        let read: Result<Vec<u8>, _> = rs.iter().try_fold(Vec::new(), |mut all, r| {
            all.extend_from_slice(&r.read()?);
            Ok::<_, strom_storage::StorageError>(all)
        });
        match read.map(Bytes::from) {
            Ok(bytes) => pd.records = Some(bytes),
            Err(e) => {
                tracing::error!("fetch read failed: {e}");
                pd.records = None;
                pd.error_code = ResponseError::KafkaStorageError.code();
            }
        }
    }
}

fn encoded(version: i16, correlation_id: i32, response: &FetchResponse) -> Outcome {
    match encode_response(ApiKey::Fetch, version, correlation_id, response) {
        Ok(buf) => Outcome::Respond(buf),
        Err(e) => Outcome::Close(e.to_string()),
    }
}

/// Copy buffers kept for the next response (no fresh pages, so no page faults, per response):
/// at most this many, of at most `KEEP_COPY_BUFFER` bytes each, shared by all connections, so
/// idle connections hold none.
const KEPT_COPY_BUFFERS: usize = 4;
const KEEP_COPY_BUFFER: usize = 8 << 20;
static COPY_BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn take_copy_buffer() -> Vec<u8> {
    COPY_BUFFERS.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default()
}

fn give_back_copy_buffer(buffer: Vec<u8>) {
    if buffer.len() <= KEEP_COPY_BUFFER {
        let mut kept = COPY_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < KEPT_COPY_BUFFERS {
            kept.push(buffer);
        }
    }
}

/// Writes the parts in order. With `sendfile`: bytes through the buffer, each file region by
/// sendfile once the buffer is flushed, the socket corked meanwhile so that the pieces leave in
/// full-sized segments (measured on loopback: uncorked sendfile costs the sender ~0.65 ms of CPU
/// per MB, corked ~0.5). Without: the regions are read into a pooled buffer (reused, so no
/// fresh pages per response) and everything goes out in one writev. A region that comes up
/// short (its segment was truncated meanwhile) is an error: the frame's length was promised, so
/// the connection must close.
pub async fn write_parts(
    writer: &mut BufWriter<OwnedWriteHalf>,
    parts: Vec<ResponsePart>,
    sendfile: bool,
) -> io::Result<()> {
    if sendfile {
        let socket: &TcpStream = writer.get_ref().as_ref();
        let _ = rustix::net::sockopt::set_tcp_cork(socket, true);
        let result = write_corked(writer, parts).await;
        let socket: &TcpStream = writer.get_ref().as_ref();
        let _ = rustix::net::sockopt::set_tcp_cork(socket, false);
        return result;
    }
    let total: usize = parts.iter().map(|p| if let ResponsePart::File(r) = p { r.len } else { 0 }).sum();
    let mut copy_buffer = take_copy_buffer();
    if copy_buffer.len() < total {
        copy_buffer.resize(total, 0);
    }
    let result = write_copied(writer, &parts, &mut copy_buffer).await;
    give_back_copy_buffer(copy_buffer);
    result
}

async fn write_copied(
    writer: &mut BufWriter<OwnedWriteHalf>,
    parts: &[ResponsePart],
    copy_buffer: &mut [u8],
) -> io::Result<()> {
    let mut slices = Vec::with_capacity(parts.len());
    let mut free = copy_buffer;
    for part in parts {
        match part {
            ResponsePart::Bytes(b) if b.is_empty() => {}
            ResponsePart::Bytes(b) => slices.push(IoSlice::new(b)),
            ResponsePart::File(region) => {
                let (chunk, rest) = std::mem::take(&mut free).split_at_mut(region.len);
                region.read_into(chunk).map_err(io::Error::other)?;
                slices.push(IoSlice::new(chunk));
                free = rest;
            }
        }
    }
    writer.flush().await?;
    write_all_vectored(writer.get_mut(), &mut slices).await
}

async fn write_corked(writer: &mut BufWriter<OwnedWriteHalf>, parts: Vec<ResponsePart>) -> io::Result<()> {
    for part in parts {
        match part {
            ResponsePart::Bytes(b) => writer.write_all(&b).await?,
            ResponsePart::File(region) => {
                writer.flush().await?;
                send_region(writer.get_mut(), &region).await?;
            }
        }
    }
    writer.flush().await
}

/// writev until every slice is out.
async fn write_all_vectored(socket: &mut OwnedWriteHalf, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    let mut rest = slices;
    while !rest.is_empty() {
        let n = rest.len().min(64);
        let written = socket.write_vectored(&rest[..n]).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

async fn send_region(socket: &mut OwnedWriteHalf, region: &FileRegion) -> io::Result<()> {
    let mut offset = region.position;
    let end = region.position + region.len as u64;
    while offset < end {
        let stream: &TcpStream = socket.as_ref();
        stream.writable().await?;
        let remaining = (end - offset) as usize;
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, &*region.file, Some(&mut offset), remaining).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} ended before byte {end} (truncated while being fetched)", region.path.display()),
                ))
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) if offset == region.position && is_unsupported(&e) => {
                // A file system without sendfile: send the region from memory instead.
                let bytes = region.read().map_err(io::Error::other)?;
                return socket.write_all(&bytes).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::INVAL.raw_os_error() || code == rustix::io::Errno::NOSYS.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    /// 150 byte pieces between file regions (more than one writev's worth of slices), written both
    /// ways: the reader gets exactly the bytes in order.
    #[tokio::test]
    async fn parts_arrive_in_order_by_sendfile_and_by_copy() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).expect("write");
        let shared = Arc::new(file.reopen().expect("reopen"));
        let region = |position: u64, len: usize| FileRegion {
            file: Arc::clone(&shared),
            position,
            len,
            path: file.path().into(),
        };
        for sendfile in [false, true] {
            let mut parts = Vec::new();
            let mut expected = Vec::new();
            for i in 0..150u64 {
                let bytes = Bytes::from(format!("piece {i};"));
                expected.extend_from_slice(&bytes);
                parts.push(ResponsePart::Bytes(bytes));
                if i % 50 == 7 {
                    let (at, len) = (i * 1000, 100_000);
                    expected.extend_from_slice(&data[at as usize..at as usize + len]);
                    parts.push(ResponsePart::File(region(at, len)));
                }
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let reader = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.expect("read");
                got
            });
            let (_, write_half) = TcpStream::connect(addr).await.expect("connect").into_split();
            let mut writer = BufWriter::new(write_half);
            write_parts(&mut writer, parts, sendfile).await.expect("written");
            writer.shutdown().await.expect("shutdown");
            drop(writer);
            assert!(reader.await.expect("reader") == expected, "sendfile={sendfile}");
        }
    }

    #[tokio::test]
    async fn a_region_cut_short_by_truncation_is_an_error() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(&[7u8; 1000]).expect("write");
        let region = FileRegion {
            file: Arc::new(file.reopen().expect("reopen")),
            position: 500,
            len: 1000,
            path: file.path().into(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _reader = tokio::spawn(async move { listener.accept().await });
        let (_, write_half) = TcpStream::connect(addr).await.expect("connect").into_split();
        let mut writer = BufWriter::new(write_half);
        for sendfile in [true, false] {
            let err = write_parts(&mut writer, vec![ResponsePart::File(region.clone())], sendfile)
                .await
                .expect_err("short region");
            assert!(
                matches!(err.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::Other),
                "sendfile={sendfile}: {err}"
            );
        }
    }
}
