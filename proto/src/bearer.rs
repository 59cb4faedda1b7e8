//! The caller's side of the API's authentication: every call to
//! `HandoffService` carries `authorization: Bearer <API key or JWT>`.

use tonic::metadata::{Ascii, MetadataValue};

/// A tonic interceptor adding `authorization: Bearer <credential>` to every
/// call, or nothing when it holds no credential (a server without
/// authentication, or a test of what it refuses). The header is marked
/// sensitive (never in HTTP/2's compression table) and never printed.
#[derive(Clone, Default)]
pub struct BearerCredential(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for BearerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("BearerCredential(<redacted>)"),
            None => f.write_str("BearerCredential(None)"),
        }
    }
}

/// The credential cannot be sent: it is not a valid header value.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidCredential;

impl std::fmt::Display for InvalidCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the credential is not a valid header value")
    }
}

impl std::error::Error for InvalidCredential {}

impl BearerCredential {
    /// `credential` (an API key or a token), trimmed; none when it is
    /// missing or blank.
    pub fn new(credential: Option<&str>) -> Result<Self, InvalidCredential> {
        match credential.map(str::trim) {
            None | Some("") => Ok(BearerCredential(None)),
            Some(credential) => {
                let mut value: MetadataValue<Ascii> = format!("Bearer {credential}")
                    .parse()
                    .map_err(|_| InvalidCredential)?;
                value.set_sensitive(true);
                Ok(BearerCredential(Some(value)))
            }
        }
    }

    /// The `authorization` value sent, if any.
    pub fn header(&self) -> Option<&MetadataValue<Ascii>> {
        self.0.as_ref()
    }
}

impl tonic::service::Interceptor for BearerCredential {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    fn header(credential: Option<&str>) -> Option<String> {
        let mut interceptor = BearerCredential::new(credential).expect("valid");
        let request = interceptor.call(tonic::Request::new(())).expect("passes");
        request
            .metadata()
            .get("authorization")
            .map(|value| value.to_str().expect("ascii").to_owned())
    }

    #[test]
    fn a_credential_is_sent_as_bearer_and_a_blank_one_not_at_all() {
        assert_eq!(header(Some(" bk_key ")), Some("Bearer bk_key".to_owned()));
        assert_eq!(header(None), None);
        assert_eq!(header(Some("  ")), None);
    }

    #[test]
    fn the_credential_is_sensitive_and_never_printed() {
        let credential = BearerCredential::new(Some("bk_key")).expect("valid");
        assert!(credential.header().expect("a header").is_sensitive());
        assert!(!format!("{credential:?}").contains("bk_key"));
    }

    #[test]
    fn a_credential_that_cannot_be_a_header_is_refused() {
        assert_eq!(
            BearerCredential::new(Some("bk\nkey")).expect_err("refused"),
            InvalidCredential
        );
    }
}
