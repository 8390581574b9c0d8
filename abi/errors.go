package abi

// Error is the one error shape of the ABI: {"code": "...", "message": "..."}.
//
// A failing export sets it, JSON-encoded, with the kernel's error_set and returns 1. A
// failing host function returns it wrapped in an ErrorResponse ({"error": {...}}).
type Error struct {
	// Code is one of the Code* constants; hosts and plugins may add codes of their own,
	// which receivers treat like CodeInternal.
	Code string `json:"code"`
	// Message is for people: lower case, no trailing punctuation, names the failing thing.
	Message string `json:"message"`
}

// Error codes. The spec lists which function returns which.
const (
	// CodeInvalidInput: a message could not be decoded, or breaks the spec (a missing
	// required member, an unknown content type, a path outside the mount).
	CodeInvalidInput = "invalid_input"
	// CodeNotFound: the thing asked for does not exist (an unknown route, a missing file).
	CodeNotFound = "not_found"
	// CodeUnimplemented: the plugin or host does not offer this operation.
	CodeUnimplemented = "unimplemented"
	// CodeUnavailable: the host function cannot be used in this kind of call (content_emit
	// outside sync_first_stage).
	CodeUnavailable = "unavailable"
	// CodeUpstream: the remote server could not be reached or broke the protocol.
	CodeUpstream = "upstream"
	// CodeLimitExceeded: a size or count limit of the spec or of the host was passed.
	CodeLimitExceeded = "limit_exceeded"
	// CodeCancelled: the host cancelled the call; the plugin should return promptly.
	CodeCancelled = "cancelled"
	// CodeInternal: anything else. A host that receives a non-JSON error message from a plugin
	// reports it with this code.
	CodeInternal = "internal"
)

// NewError returns an Error with the given code and message.
func NewError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Error implements error as "code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is matches another *Error with the same code, so errors.Is(err, abi.NewError(code, ""))
// tests for a code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// ErrorResponse is the response block of a failing host function. Success responses never
// have a top-level "error" member, so a receiver can decode every response into its success
// type with an embedded ErrorResponse and check Error.
type ErrorResponse struct {
	Error *Error `json:"error,omitempty"`
}

// Err returns r.Error as an error, or nil.
func (r ErrorResponse) Err() error {
	if r.Error == nil {
		return nil
	}
	return r.Error
}
