//! Why a hub method failed, and the texts clients get for it, in ASP.NET Core's words
//! (`ErrorMessageHelper.BuildErrorMessage`): a generic sentence, followed by `Type: message`
//! for a [`HubError::Refused`] always and for a [`HubError::Internal`] only with detailed
//! errors on (`HubOptions::enable_detailed_errors`).

/// Why a hub method did not return a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// A refusal meant for the caller (.NET's `HubException`): the text reaches the client.
    #[error("{0}")]
    Refused(String),
    /// A failure whose detail stays in the server's log; the client gets .NET's generic text,
    /// followed by the detail when detailed errors are on. Write the detail as .NET shows an
    /// exception, `Type: message` ([`HubError::exception`] does).
    #[error("{0}")]
    Internal(String),
}

impl HubError {
    /// An internal failure shown, with detailed errors on, as .NET shows an exception of type
    /// `kind`: `HubError::exception("InvalidOperationException", "no")` reads
    /// `InvalidOperationException: no`.
    pub fn exception(kind: &str, message: impl std::fmt::Display) -> Self {
        Self::Internal(format!("{kind}: {message}"))
    }
}

/// The detail .NET's JSON and MessagePack binders give when arguments do not fit.
const BINDING_DETAIL: &str = "InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.";

/// `sentence`, then the error's detail when the client may see it.
fn build(sentence: &str, error: HubError, detailed: bool, what: &str) -> String {
    match error {
        HubError::Refused(message) => format!("{sentence} HubException: {message}"),
        HubError::Internal(detail) => {
            tracing::error!(%detail, "{what}");
            if detailed {
                format!("{sentence} {detail}")
            } else {
                sentence.to_owned()
            }
        }
    }
}

/// The Completion text for a failed invocation (also a streaming method that failed before
/// its first item, as in .NET).
pub(crate) fn invocation_error(target: &str, error: HubError, detailed: bool) -> String {
    let sentence = format!("An unexpected error occurred invoking '{target}' on the server.");
    build(&sentence, error, detailed, "hub method failed")
}

/// The Completion text for a stream that failed after it started.
pub(crate) fn stream_error(error: HubError, detailed: bool) -> String {
    build(
        "An error occurred on the server while streaming results.",
        error,
        detailed,
        "hub stream failed",
    )
}

/// The Completion text for arguments that did not bind.
pub(crate) fn binding_error(target: &str, detailed: bool) -> String {
    let sentence = format!("Failed to invoke '{target}' due to an error on the server.");
    if detailed {
        format!("{sentence} {BINDING_DETAIL}")
    } else {
        sentence
    }
}

/// The `Close` text for a connection refused by `on_connected` or closed with an error.
pub(crate) fn close_error(error: HubError, detailed: bool) -> String {
    build(
        "Connection closed with an error.",
        error,
        detailed,
        "connection closed with an error",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_appears_only_when_detailed_or_refused() {
        let boom = || HubError::exception("InvalidOperationException", "boom");
        assert_eq!(
            invocation_error("M", boom(), false),
            "An unexpected error occurred invoking 'M' on the server."
        );
        assert_eq!(
            invocation_error("M", boom(), true),
            "An unexpected error occurred invoking 'M' on the server. InvalidOperationException: boom"
        );
        for detailed in [false, true] {
            assert_eq!(
                invocation_error("M", HubError::Refused("no".into()), detailed),
                "An unexpected error occurred invoking 'M' on the server. HubException: no"
            );
        }
        assert_eq!(
            stream_error(boom(), true),
            "An error occurred on the server while streaming results. InvalidOperationException: boom"
        );
        assert_eq!(
            stream_error(boom(), false),
            "An error occurred on the server while streaming results."
        );
        assert_eq!(
            binding_error("M", true),
            format!("Failed to invoke 'M' due to an error on the server. {BINDING_DETAIL}")
        );
        assert_eq!(
            close_error(boom(), true),
            "Connection closed with an error. InvalidOperationException: boom"
        );
        assert_eq!(
            close_error(boom(), false),
            "Connection closed with an error."
        );
    }
}
