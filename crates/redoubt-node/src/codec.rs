//! Frames on a libp2p stream: a 4-byte big-endian length, checked against the protocol's cap
//! before anything is allocated, then the frame.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use redoubt_protocol::{
    PROTOCOL_NAME, PROTOCOL_NAME_V2, PROTOCOL_NAME_V3, PROTOCOL_NAME_V4, VERSION_4, check_frame_len,
};

/// The stream was negotiated as an older version than the request frame needs (a version 2
/// request on `/redoubt/sync/1`, a bound version 3 opening on `/1` or `/2`): the peer speaks
/// at most `version`. Nothing was sent; the engine may retry in that version.
#[derive(Debug, thiserror::Error)]
#[error("the peer speaks only up to /redoubt/sync/{version}")]
pub(crate) struct PeerSpeaksOlder {
    /// The newest version the peer negotiated.
    pub(crate) version: u8,
}

/// The version a stream was negotiated as, from its protocol name.
fn stream_version(protocol: &str) -> Option<u8> {
    match protocol {
        PROTOCOL_NAME => Some(1),
        PROTOCOL_NAME_V2 => Some(2),
        PROTOCOL_NAME_V3 => Some(3),
        PROTOCOL_NAME_V4 => Some(4),
        // Pairing: a version 3 frame on a stream negotiated as `/redoubt/pair/2` is refused
        // the same way, so that the joiner says its `Hello` again in version 2.
        redoubt_protocol::pairing::PAIR_PROTOCOL_NAME => Some(2),
        redoubt_protocol::pairing::PAIR_PROTOCOL_NAME_V3 => Some(3),
        _ => None,
    }
}

/// The request-response codec of `/redoubt/sync/4`, `/3`, `/2` and `/1`: requests and responses
/// are opaque frames that the sans-IO protocol crate encodes and decodes.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameCodec;

/// The first read of a frame, in bytes; later reads double what has arrived.
const FIRST_READ: usize = 64 * 1024;

/// Reads one length-prefixed frame of at most [`redoubt_protocol::MAX_FRAME_LEN`] bytes.
pub(crate) async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    check_frame_len(len).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    // Grow with the bytes that actually arrive, doubling: a peer that announces 4 MiB and sends
    // k bytes costs at most about 2k. Each byte is zeroed once and read once (`read_to_end`
    // zeroed the spare capacity again at each growth).
    let mut frame = Vec::new();
    while frame.len() < len {
        let have = frame.len();
        let step = (len - have).min(have.max(FIRST_READ));
        frame.resize(have + step, 0);
        if let Err(e) = io.read_exact(&mut frame[have..]).await {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("frame ended before its {len} bytes"),
                )
            } else {
                e
            });
        }
    }
    Ok(frame)
}

/// Writes one frame with its length. The frame's size was checked by its encoder (a test hook
/// may bypass that to exercise the reader's cap).
pub(crate) async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    frame: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(frame.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(frame).await?;
    io.close().await
}

impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        // A frame of a newer version than the stream the peer negotiated (a version 2 frame on
        // /1, a bound version 3 opening on /1 or /2): it is an older node. Nothing is sent;
        // the engine retries the pull in the version the peer speaks. A version byte no
        // version defines goes out as it is, for the peer to refuse (tests of hostile peers).
        if let (Some(version), Some(&frame)) = (stream_version(protocol.as_ref()), req.first())
            && frame > version
            && frame <= VERSION_4
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                PeerSpeaksOlder { version },
            ));
        }
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use redoubt_protocol::MAX_FRAME_LEN;

    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused_before_reading() {
        futures::executor::block_on(async {
            let mut buf = Cursor::new(Vec::new());
            write_frame(&mut buf, b"hello").await.unwrap();
            let mut r = Cursor::new(buf.into_inner());
            assert_eq!(read_frame(&mut r).await.unwrap(), b"hello");
            let huge = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
            let err = read_frame(&mut Cursor::new(huge.to_vec()))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("frame too large"), "{err}");
            let short = [0, 0, 0, 9, 1, 2];
            assert!(read_frame(&mut Cursor::new(short.to_vec())).await.is_err());
        });
    }

    /// A request frame goes out on a stream of its version or a newer one; on an older stream
    /// the codec refuses it with the version the peer speaks, and writes nothing.
    #[test]
    fn newer_frames_are_refused_on_older_streams() {
        use libp2p::request_response::Codec as _;
        futures::executor::block_on(async {
            for (name, frame_version, refused) in [
                (PROTOCOL_NAME, 1, None),
                (PROTOCOL_NAME, 2, Some(1)),
                (PROTOCOL_NAME, 3, Some(1)),
                (PROTOCOL_NAME_V2, 2, None),
                (PROTOCOL_NAME_V2, 3, Some(2)),
                (PROTOCOL_NAME_V3, 1, None),
                (PROTOCOL_NAME_V3, 2, None),
                (PROTOCOL_NAME_V3, 3, None),
            ] {
                let mut out = Cursor::new(Vec::new());
                let written = FrameCodec
                    .write_request(
                        &StreamProtocol::new(name),
                        &mut out,
                        vec![frame_version, 0x01],
                    )
                    .await;
                match refused {
                    None => {
                        written.unwrap();
                        assert_eq!(out.into_inner(), [0, 0, 0, 2, frame_version, 0x01]);
                    }
                    Some(version) => {
                        let err = written.unwrap_err();
                        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
                        let inner = err
                            .get_ref()
                            .and_then(|e| e.downcast_ref::<PeerSpeaksOlder>());
                        assert_eq!(inner.map(|e| e.version), Some(version), "{name}");
                        assert!(out.into_inner().is_empty(), "nothing sent");
                    }
                }
            }
        });
    }
}
