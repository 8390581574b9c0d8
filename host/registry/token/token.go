// Package token implements Docker's token authentication for the registry: a token
// endpoint that authenticates users (anonymous allowed) and grants the subset of the
// requested scopes they may have, and a registry.Access that verifies the bearer tokens
// it signs (HS256 JWTs with a key shared by all processes through the data dir).
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// KeyFile is the name of the signing key under the data dir.
const KeyFile = "registry-token.key"

// LoadKey reads the signing key from dir, generating it (mode 0600) on first start. The
// key is written to a private temporary file and linked into place, so concurrent first
// starts agree on whichever key was linked first.
func LoadKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		f, err := os.CreateTemp(dir, KeyFile+".*") // mode 0600
		if err != nil {
			return nil, fmt.Errorf("create registry token key: %w", err)
		}
		defer os.Remove(f.Name())
		key := make([]byte, 32)
		rand.Read(key) //nolint:errcheck // crypto/rand never fails
		_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
		if err := errors.Join(werr, f.Close()); err != nil {
			return nil, fmt.Errorf("write registry token key: %w", err)
		}
		if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("install registry token key: %w", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read registry token key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("registry token key %s: not 32 or more hex-encoded bytes", path)
	}
	return key, nil
}

// Grant is one entry of a token's access claim.
type Grant struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Claims are what a token says.
type Claims struct {
	Issuer    string  `json:"iss"`
	Subject   string  `json:"sub"`
	Audience  string  `json:"aud"`
	ExpiresAt int64   `json:"exp"`
	NotBefore int64   `json:"nbf"`
	IssuedAt  int64   `json:"iat"`
	ID        string  `json:"jti"`
	Access    []Grant `json:"access"`
}

// Allows reports whether the claims grant action on (typ, name).
func (c Claims) Allows(typ, name, action string) bool {
	for _, g := range c.Access {
		if g.Type == typ && g.Name == name && (slices.Contains(g.Actions, action) || slices.Contains(g.Actions, "*")) {
			return true
		}
	}
	return false
}

// Signer signs and verifies tokens.
type Signer struct {
	Key    []byte
	Issuer string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

var header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// Sign returns the JWT of c.
func (s *Signer) Sign(c Claims) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	signed := header + "." + base64.RawURLEncoding.EncodeToString(body)
	return signed + "." + base64.RawURLEncoding.EncodeToString(s.mac(signed)), nil
}

func (s *Signer) mac(signed string) []byte {
	m := hmac.New(sha256.New, s.Key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// ErrInvalid is why a token is refused.
var ErrInvalid = errors.New("invalid token")

// Verify checks the signature, algorithm, expiry and audience of tok.
func (s *Signer) Verify(tok, audience string) (Claims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: not a JWT", ErrInvalid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.mac(parts[0]+"."+parts[1])) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct {
		Alg string `json:"alg"`
	}
	if err != nil || json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" {
		return Claims{}, fmt.Errorf("%w: unsupported algorithm", ErrInvalid)
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c Claims
	if err != nil || json.Unmarshal(body, &c) != nil {
		return Claims{}, fmt.Errorf("%w: bad claims", ErrInvalid)
	}
	now := s.now().Unix()
	if c.ExpiresAt <= now {
		return Claims{}, fmt.Errorf("%w: expired", ErrInvalid)
	}
	if c.NotBefore > now+60 {
		return Claims{}, fmt.Errorf("%w: not valid yet", ErrInvalid)
	}
	if c.Audience != audience || c.Issuer != s.Issuer {
		return Claims{}, fmt.Errorf("%w: wrong audience or issuer", ErrInvalid)
	}
	return c, nil
}
