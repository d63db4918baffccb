//! Which ClickHouse failures are worth retrying.
//!
//! Network trouble and the server's "try again" codes are transient; anything
//! else (unknown table, type mismatch, syntax) will fail the same way on every
//! retry and needs an operator.

use std::time::Duration;

use clickhouse::error::Error;
use clickhouse::query::Query;

/// What to do after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Wait and try the same request again.
    Transient,
    /// Stop: retrying cannot help.
    Fatal,
}

/// Server error codes that mean "not now" rather than "never":
/// 159 TIMEOUT_EXCEEDED, 164 READONLY (replica catching up), 202
/// TOO_MANY_SIMULTANEOUS_QUERIES, 203 NO_FREE_CONNECTION, 209
/// SOCKET_TIMEOUT, 210 NETWORK_ERROR, 241 MEMORY_LIMIT_EXCEEDED, 242
/// TABLE_IS_READ_ONLY, 252 TOO_MANY_PARTS, 279 ALL_CONNECTION_TRIES_FAILED
/// (a shard of a cluster down), 285 TOO_FEW_LIVE_REPLICAS (an insert
/// quorum cannot be met while a replica is down), 286
/// UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE (18.16 serialises quorum inserts
/// into a table), 319 UNKNOWN_STATUS_OF_INSERT (a quorum insert timed out:
/// the block may be written), 425 SYSTEM_ERROR, 999 KEEPER_EXCEPTION.
const TRANSIENT_CODES: &[u32] = &[159, 164, 202, 203, 209, 210, 241, 242, 252, 279, 285, 286, 319, 425, 999];

/// What a server adds to an error when its connection to another server
/// (a shard or replica of a cluster) broke mid-request, whatever the code:
/// 210 when the peer reset it, 32 ATTEMPT_TO_READ_AFTER_EOF when the peer
/// died in the middle of a packet (seen when a shard was killed during a
/// distributed insert). Retrying reaches the peer once it is back.
const PEER_CONNECTION_LOST: &str = "while receiving packet from";

pub fn classify(err: &Error) -> Retry {
    match err {
        Error::Network(_) | Error::TimedOut => Retry::Transient,
        Error::BadResponse(text) if text.contains(PEER_CONNECTION_LOST) => Retry::Transient,
        Error::BadResponse(text) => match server_code(text) {
            Some(code) if TRANSIENT_CODES.contains(&code) => Retry::Transient,
            Some(_) => Retry::Fatal,
            // No code: a proxy or a half-started server answered.
            None => Retry::Transient,
        },
        _ => Retry::Fatal,
    }
}

/// Whether `err` is 373 SESSION_IS_LOCKED: the session is still busy with a
/// query. ClickHouse releases a session only after the answer has gone out,
/// so the next statement of a session, sent as soon as the answer arrives,
/// may find it still held (ClickHouse issue #4003); it was not run, and
/// sending it again a moment later is safe.
fn session_busy(err: &Error) -> bool {
    matches!(err, Error::BadResponse(text) if server_code(text) == Some(373))
}

/// How long a statement waits before it is sent again to a session still
/// held by the statement before it.
const SESSION_RELEASE: Duration = Duration::from_millis(5);

/// `run(query)`, sent again a moment later for as long as it finds its
/// session held by the statement before ([`session_busy`]); every statement
/// of a session (`session_id`) goes through it. The caller bounds the time.
pub async fn when_session_free<T>(query: &Query, run: impl AsyncFn(Query) -> Result<T, Error>) -> Result<T, Error> {
    until_session_free(|| run(query.clone())).await
}

/// `run()` ([`when_session_free`] for a statement that is not a
/// [`Query`]: an insert of a session), run again for as long as it finds
/// its session held.
pub async fn until_session_free<T, F: Future<Output = Result<T, Error>>>(
    mut run: impl FnMut() -> F,
) -> Result<T, Error> {
    loop {
        match run().await {
            Err(e) if session_busy(&e) => tokio::time::sleep(SESSION_RELEASE).await,
            answer => return answer,
        }
    }
}

/// The `Code: N` of a ClickHouse error text.
fn server_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide() {
        let bad = |t: &str| classify(&Error::BadResponse(t.into()));
        assert_eq!(bad("Code: 252, e.displayText() = DB::Exception: Too many parts"), Retry::Transient);
        assert_eq!(bad("Code: 60. DB::Exception: Table dvc.x doesn't exist. (UNKNOWN_TABLE)"), Retry::Fatal);
        assert_eq!(bad("Code: 319, e.displayText() = Unknown status"), Retry::Transient);
        assert_eq!(bad("Code: 279, e.displayText() = DB::NetException: All connection tries failed"), Retry::Transient);
        assert_eq!(
            bad("Code: 285. DB::Exception: Number of alive replicas (1) is less than requested quorum (2)"),
            Retry::Transient
        );
        assert_eq!(
            bad("Code: 286. DB::Exception: Quorum for previous write has not been satisfied yet"),
            Retry::Transient
        );
        // A shard killed during a distributed insert (ClickHouse 18.16, the
        // cluster fault test): its peer's connection ends mid-packet.
        assert_eq!(
            bad("Code: 32, e.displayText() = DB::Exception: Attempt to read after eof: while receiving packet \
                 from 127.0.0.1:9003: Insertion status:\nWrote 1 blocks and 21 rows on shard 0 replica 0"),
            Retry::Transient
        );
        assert_eq!(bad("Code: 32. DB::Exception: Attempt to read after eof"), Retry::Fatal, "a short body");
        assert_eq!(bad("502 Bad Gateway"), Retry::Transient);
        assert_eq!(classify(&Error::TimedOut), Retry::Transient);
        assert_eq!(classify(&Error::NotEnoughData), Retry::Fatal);
    }

    #[test]
    fn a_locked_session_is_told_apart() {
        let locked = "Code: 373, e.displayText() = DB::Exception: Session is locked by a concurrent client.";
        assert!(session_busy(&Error::BadResponse(locked.into())));
        assert!(!session_busy(&Error::BadResponse("Code: 60. DB::Exception: Table x doesn't exist".into())));
        assert!(!session_busy(&Error::TimedOut));
    }
}
