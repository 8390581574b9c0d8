package sdk

import (
	"errors"
	"fmt"

	"github.com/pulpo/pulpo/abi"
)

// Errorf returns an *abi.Error with the given code; the host sees the code unchanged.
func Errorf(code, format string, args ...any) error {
	return &abi.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// StatusError is returned by Sync.Fetch for a response that is not 2xx. The *Fetched
// returned with it holds the status and headers.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fetch %s: status %d", e.URL, e.Status)
}

// toABI turns any error into the wire error: an *abi.Error anywhere in the chain keeps its
// code, with the full message; anything else is internal.
func toABI(err error) *abi.Error {
	var ae *abi.Error
	if errors.As(err, &ae) {
		return &abi.Error{Code: ae.Code, Message: messageOf(err, ae)}
	}
	return &abi.Error{Code: abi.CodeInternal, Message: err.Error()}
}

// messageOf keeps the context a plugin wrapped around an *abi.Error without repeating its
// code: fmt.Errorf("parse manifest: %w", Errorf(invalid_input, "line 3")) becomes
// "parse manifest: line 3".
func messageOf(err error, ae *abi.Error) string {
	full := err.Error()
	inner := ae.Error()
	if full == inner {
		return ae.Message
	}
	if len(full) > len(inner) && full[len(full)-len(inner):] == inner {
		return full[:len(full)-len(inner)] + ae.Message
	}
	return full
}
