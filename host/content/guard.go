package content

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// guard decides whether a request may read a guarded distribution.
type guard interface {
	permit(r *http.Request) error
}

// errDenied is wrapped by every guard refusal; the handler answers 403.
var errDenied = errors.New("access denied")

// DownloadChecker answers whether the user of a request (authenticated by
// the server's middleware, in ctx) may download through the core.rbac guard
// with this id; host/auth implements it.
type DownloadChecker interface {
	MayDownload(ctx context.Context, guard uuid.UUID) (bool, error)
}

// parseGuard builds the check of a content guard row. A guard this host
// cannot evaluate (an unknown type, a jq_filter, a bad secret) denies every
// request: a guard that silently let everything through would be worse.
func parseGuard(g db.ContentGuard) guard { return parseGuardWith(g, nil) }

// parseGuardWith is parseGuard with the checker of core.rbac guards (nil:
// they deny everything).
func parseGuardWith(g db.ContentGuard, downloads DownloadChecker) guard {
	switch g.PulpType {
	case "core.rbac":
		if downloads == nil {
			return denyGuard{fmt.Sprintf("guard %q: no user authorization here", g.Name)}
		}
		return rbacGuard{id: g.ID, check: downloads}
	case "core.header":
		var f struct {
			HeaderName  string `json:"header_name"`
			HeaderValue string `json:"header_value"`
			JQFilter    string `json:"jq_filter"`
		}
		if err := json.Unmarshal(g.Fields, &f); err != nil || f.HeaderName == "" {
			return denyGuard{fmt.Sprintf("guard %q has no header_name", g.Name)}
		}
		if f.JQFilter != "" {
			return denyGuard{fmt.Sprintf("guard %q: jq_filter is not supported", g.Name)}
		}
		return headerGuard{name: http.CanonicalHeaderKey(f.HeaderName), value: f.HeaderValue}
	case "core.content_redirect":
		var f struct {
			SharedSecret string `json:"shared_secret"`
		}
		if err := json.Unmarshal(g.Fields, &f); err != nil {
			return denyGuard{fmt.Sprintf("guard %q: fields: %v", g.Name, err)}
		}
		secret, err := hex.DecodeString(f.SharedSecret)
		if err != nil || len(secret) == 0 {
			return denyGuard{fmt.Sprintf("guard %q: shared_secret is not non-empty hex", g.Name)}
		}
		return redirectGuard{secret: secret}
	}
	return denyGuard{fmt.Sprintf("guard %q has unsupported type %s", g.Name, g.PulpType)}
}

type denyGuard struct{ why string }

// rbacGuard is core.rbac: the request's user holds the download permission
// on the guard.
type rbacGuard struct {
	id    uuid.UUID
	check DownloadChecker
}

func (g rbacGuard) permit(r *http.Request) error {
	ok, err := g.check.MayDownload(r.Context(), g.id)
	if err != nil {
		return fmt.Errorf("%w: %w", errDenied, err)
	}
	if !ok {
		return fmt.Errorf("%w: no download permission on guard %s", errDenied, g.id)
	}
	return nil
}

func (g denyGuard) permit(*http.Request) error { return fmt.Errorf("%w: %s", errDenied, g.why) }

// headerGuard is core.header: the request carries header name with value.
type headerGuard struct{ name, value string }

func (g headerGuard) permit(r *http.Request) error {
	for _, v := range r.Header[g.name] {
		if subtle.ConstantTimeCompare([]byte(v), []byte(g.value)) == 1 {
			return nil
		}
	}
	return fmt.Errorf("%w: header %s missing or wrong", errDenied, g.name)
}

// tokenParam carries a signed URL's token: "<expires>:<signature>".
const tokenParam = "validate_token"

// redirectGuard is core.content_redirect: the URL is signed with the guard's
// shared secret and not expired.
type redirectGuard struct{ secret []byte }

func (g redirectGuard) permit(r *http.Request) error {
	exp, sig, ok := strings.Cut(r.URL.Query().Get(tokenParam), ":")
	if !ok {
		return fmt.Errorf("%w: no valid %s", errDenied, tokenParam)
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > e {
		return fmt.Errorf("%w: %s expired", errDenied, tokenParam)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, signature(g.secret, r.URL.Path, exp)) {
		return fmt.Errorf("%w: %s does not match", errDenied, tokenParam)
	}
	return nil
}

// signature is the HMAC-SHA256 of the URL path and the expiry. The NUL
// between them (never part of a served path) stops a token for "/a1",
// expiring at E, from also signing "/a" expiring at "1"+E.
func signature(secret []byte, path, expires string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(path))
	m.Write([]byte{0})
	m.Write([]byte(expires))
	return m.Sum(nil)
}

// SignURL returns rawURL (absolute, or a path such as
// /pulp/content/base/file) with a validate_token that a core.content_redirect
// guard whose shared_secret is secretHex accepts until expires. The token
// signs the URL's path only, so the URL must be requested with that exact
// (decoded) path.
func SignURL(rawURL, secretHex string, expires time.Time) (string, error) {
	secret, err := hex.DecodeString(secretHex)
	if err != nil || len(secret) == 0 {
		return "", errors.New("sign url: shared secret is not non-empty hex")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("sign url: %w", err)
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	q := u.Query()
	q.Set(tokenParam, exp+":"+hex.EncodeToString(signature(secret, u.Path, exp)))
	u.RawQuery = q.Encode()
	return u.String(), nil
}
