package download

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// HTTPError is a response whose status is not 2xx. 429 and 5xx are retried.
type HTTPError struct {
	// URL answered with Status: the requested URL or, after redirects, the
	// last one.
	URL    string
	Status int
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("download %s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// DigestError is a body whose digest differs from the expected one.
type DigestError struct {
	URL       string
	Algorithm string
	Expected  string
	Actual    string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("download %s: %s digest mismatch: expected %s, got %s", e.URL, e.Algorithm, e.Expected, e.Actual)
}

// SizeError is a body whose length differs from the expected one. Reading
// stops one byte past the expected size, so an Actual above Expected is a
// lower bound.
type SizeError struct {
	URL      string
	Expected int64
	Actual   int64
}

func (e *SizeError) Error() string {
	if e.Actual > e.Expected {
		return fmt.Sprintf("download %s: size mismatch: expected %d bytes, got at least %d", e.URL, e.Expected, e.Actual)
	}
	return fmt.Sprintf("download %s: size mismatch: expected %d bytes, got %d", e.URL, e.Expected, e.Actual)
}

// TimeoutError is an attempt that ran out of time. Phase names the Config
// field: "total_timeout", "connect_timeout" or "sock_read_timeout".
type TimeoutError struct {
	URL   string
	Phase string
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("download %s: %s of %s exceeded", e.URL, e.Phase, e.After)
}

// Timeout makes a TimeoutError a net.Error-style timeout.
func (e *TimeoutError) Timeout() bool { return true }

// finalError marks an error that no retry can cure.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

func final(err error) error { return &finalError{err} }

// retryWait tells whether err is worth another attempt, and the wait the
// server asked for (zero: use the back-off).
func retryWait(err error) (time.Duration, bool) {
	var fe *finalError
	if errors.As(err, &fe) || errors.Is(err, context.Canceled) {
		return 0, false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter, he.Status == http.StatusTooManyRequests || he.Status >= 500
	}
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		rec tls.RecordHeaderError
		op  *net.OpError
	)
	// Certificate and protocol failures persist, and so do TLS alerts from
	// the server (crypto/tls reports them as net.OpError "remote error"),
	// e.g. a refused or missing client certificate.
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) ||
		errors.As(err, &rec) || errors.As(err, &op) && op.Op == "remote error" {
		return 0, false
	}
	// Connection, protocol and timeout errors, size and digest mismatches.
	return 0, true
}

// maxRetryAfter caps the wait a server can impose.
const maxRetryAfter = 5 * time.Minute

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil || errors.Is(err, strconv.ErrRange) {
		// Compared before multiplying: a huge value must wait long, not overflow into
		// an immediate retry.
		switch {
		case s <= 0:
		case s > int(maxRetryAfter/time.Second):
			d = maxRetryAfter
		default:
			d = time.Duration(s) * time.Second
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// redact renders u without userinfo.
func redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = nil
	return c.String()
}
