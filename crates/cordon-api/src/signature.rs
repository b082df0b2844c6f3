//! The platform's signatures: `<key id>:<hex HMAC-SHA256(key, message)>`, where each message
//! names what it vouches for (`cordon-report-v1`, `cordon-appeal-v1`, ...), so a signature
//! can be neither replayed for another request nor lent to another kind of one.

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

/// A signature, parsed: the key it names and its MAC.
pub(crate) struct Signature<'a> {
    /// The key id.
    pub key_id: &'a str,
    mac: Vec<u8>,
}

/// 401 with `why`.
pub(crate) fn refused(why: &str) -> ApiError {
    ApiError::Refused(StatusCode::UNAUTHORIZED, why.to_string())
}

impl<'a> Signature<'a> {
    /// Parses `<key id>:<hex MAC>`; anything else is refused with 401.
    pub fn parse(signature: &'a str) -> Result<Signature<'a>, ApiError> {
        let malformed = || refused("signature must be `<key id>:<hex HMAC>`");
        let (key_id, mac) = signature.split_once(':').ok_or_else(malformed)?;
        let mac = hex::decode(mac).map_err(|_| malformed())?;
        Ok(Signature { key_id, mac })
    }

    /// Checks, in constant time, that it is `secret`'s MAC of `message`; else 401.
    pub fn verify(&self, secret: &[u8], message: &str) -> Result<(), ApiError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(message.as_bytes());
        mac.verify_slice(&self.mac)
            .map_err(|_| refused("the signature does not match"))
    }
}

/// What a report's signature signs: one reporter reporting one item.
pub(crate) fn report_message(item_id: &str, reporter: &str) -> String {
    format!("cordon-report-v1\n{item_id}\n{reporter}")
}

/// What reading a report's status signs: the report's id.
pub(crate) fn report_status_message(report_id: i64) -> String {
    format!("cordon-report-status-v1\n{report_id}")
}

/// What an appeal's signature signs: one appellant appealing one statement for one channel.
pub(crate) fn appeal_message(statement_id: i64, channel_id: &str, appellant: &str) -> String {
    format!("cordon-appeal-v1\n{statement_id}\n{channel_id}\n{appellant}")
}

/// What reading an appeal's outcome signs: the appeal's id.
pub(crate) fn appeal_status_message(appeal_id: i64) -> String {
    format!("cordon-appeal-status-v1\n{appeal_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_its_message_with_its_key() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").expect("a key");
        mac.update(report_status_message(7).as_bytes());
        let signed = format!("k1:{}", hex::encode(mac.finalize().into_bytes()));
        let s = Signature::parse(&signed).expect("parsed");
        assert_eq!(s.key_id, "k1");
        assert!(s.verify(b"secret", &report_status_message(7)).is_ok());
        assert!(s.verify(b"secret", &report_status_message(8)).is_err());
        assert!(s.verify(b"other", &report_status_message(7)).is_err());
        assert!(s.verify(b"secret", &appeal_status_message(7)).is_err());
        assert!(Signature::parse("no colon").is_err());
        assert!(Signature::parse("k1:not hex").is_err());
    }
}
