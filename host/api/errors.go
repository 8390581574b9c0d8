package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pulpo/pulpo/host/db"
)

// Error is an HTTP error with a DRF-shaped JSON body: {"detail": "..."} or
// {"field": ["message", ...]}.
type Error struct {
	Status int
	Body   any
}

func (e *Error) Error() string { return fmt.Sprintf("%d %v", e.Status, e.Body) }

// fieldError is a 400 naming one field.
func fieldError(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Body: map[string][]string{field: {fmt.Sprintf(format, args...)}}}
}

// fieldErrors is a 400 naming several fields.
type fieldErrors map[string][]string

func (fe fieldErrors) add(field, format string, args ...any) {
	fe[field] = append(fe[field], fmt.Sprintf(format, args...))
}

func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return &Error{Status: http.StatusBadRequest, Body: map[string][]string(fe)}
}

func detail(status int, format string, args ...any) *Error {
	return &Error{Status: status, Body: map[string]string{"detail": fmt.Sprintf(format, args...)}}
}

var errNotFound = detail(http.StatusNotFound, "Not found.")

// toHTTP maps any error to the status and body to send.
func toHTTP(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, db.ErrNotFound):
		return errNotFound
	case errors.Is(err, db.ErrBadFilter):
		return detail(http.StatusBadRequest, "%v", err)
	case errors.Is(err, db.ErrConflict), errors.Is(err, db.ErrInUse):
		return detail(http.StatusConflict, "%v", err)
	}
	return detail(http.StatusInternalServerError, "Internal server error.")
}
