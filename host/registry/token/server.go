package token

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/db"
)

// Authenticator checks Basic credentials (auth.Authenticator).
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (*auth.User, error)
}

// Permissions lists what a user may do globally and on an object (auth.Authorizer).
type Permissions interface {
	Permissions(ctx context.Context, u *auth.User, object *uuid.UUID) (auth.Perms, error)
}

// Distributions lists the registry's distributions (db.DB).
type Distributions interface {
	RegistryDistributions(ctx context.Context, pulpType string) ([]db.RegistryDistribution, error)
}

// Server answers GET /token (Docker token authentication): it authenticates Basic
// credentials, anonymous requests included, and grants what the user may of the scopes
// asked for:
//   - repository:<name>:pull on a public distribution to anyone; on a private one to
//     holders of <plugin>.pull_<model> or <plugin>.view_<model> on it (or globally); on
//     a name no distribution serves to holders of the global add permission;
//   - repository:<name>:push and delete to holders of push or change on an existing
//     distribution served from a push repository, and for a new name to holders of the
//     global add permission (the _creator role);
//   - registry:catalog:* to anyone (the catalog lists only what the token may pull).
//
// Superusers get everything they ask for. Scopes not granted are left out of the token,
// never refused, as the spec asks.
type Server struct {
	Signer           *Signer
	Users            Authenticator
	Perms            Permissions
	Dists            Distributions
	DistributionType string
	// Model is the distributions' permission model (container.containerdistribution).
	Model auth.Model
	TTL   time.Duration
	Log   *slog.Logger
}

// ServeHTTP answers a token request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "method " + r.Method + " not allowed"})
		return
	}
	q := r.URL.Query()
	service := q.Get("service")
	if service == "" {
		service = r.Host
	}
	if service != r.Host {
		writeJSON(w, http.StatusBadRequest, map[string]string{"service": "this token service is " + r.Host})
		return
	}
	var user *auth.User
	if name, pw, ok := r.BasicAuth(); ok {
		u, err := s.Users.Authenticate(r.Context(), name, pw)
		if errors.Is(err, auth.ErrBadCredentials) {
			w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid username/password."})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		user = u
	}
	var scopes []string
	for _, v := range q["scope"] {
		scopes = append(scopes, strings.Fields(v)...)
	}
	grants, err := s.grant(r.Context(), user, scopes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.Signer.now()
	sub := ""
	if user != nil {
		sub = user.Username
	}
	jti := make([]byte, 16)
	rand.Read(jti) //nolint:errcheck // crypto/rand never fails
	tok, err := s.Signer.Sign(Claims{Issuer: s.Signer.Issuer, Subject: sub, Audience: service, IssuedAt: now.Unix(),
		NotBefore: now.Unix(), ExpiresAt: now.Add(s.TTL).Unix(), ID: hex.EncodeToString(jti), Access: grants})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "access_token": tok, "expires_in": int(s.TTL.Seconds()),
		"issued_at": now.UTC().Format(time.RFC3339)})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.Log.ErrorContext(r.Context(), "token request failed", "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "Internal server error."})
}

// grant returns the part of scopes user may have.
func (s *Server) grant(ctx context.Context, user *auth.User, scopes []string) ([]Grant, error) {
	var dists map[string]db.RegistryDistribution
	var global *auth.Perms
	var out []Grant
	for _, scope := range scopes {
		typ, rest, ok := strings.Cut(scope, ":")
		i := strings.LastIndexByte(rest, ':')
		if !ok || i < 0 {
			continue
		}
		name, actions := rest[:i], strings.Split(rest[i+1:], ",")
		if typ == "registry" && name == "catalog" {
			out = append(out, Grant{Type: typ, Name: name, Actions: []string{"*"}})
			continue
		}
		if typ != "repository" {
			continue
		}
		if dists == nil {
			rows, err := s.Dists.RegistryDistributions(ctx, s.DistributionType)
			if err != nil {
				return nil, err
			}
			dists = make(map[string]db.RegistryDistribution, len(rows))
			for _, d := range rows {
				dists[d.BasePath] = d
			}
		}
		d, exists := dists[name]
		var perms auth.Perms
		switch {
		case user == nil:
		case exists:
			p, err := s.Perms.Permissions(ctx, user, &d.ID)
			if err != nil {
				return nil, err
			}
			perms = p
		default:
			if global == nil {
				p, err := s.Perms.Permissions(ctx, user, nil)
				if err != nil {
					return nil, err
				}
				global = &p
			}
			perms = *global
		}
		var got []string
		for _, a := range actions {
			var ok bool
			switch a {
			case "pull":
				// On a name not yet pushed, whoever may create it may look (and learn it
				// is unknown, as clients check before pushing).
				ok = exists && (!d.Private || perms.Has(s.Model.Perm("pull")) || perms.Has(s.Model.Perm("view"))) ||
					!exists && perms.Has(s.Model.Perm("add"))
			case "push", "delete":
				if exists {
					ok = perms.Has(s.Model.Perm("push")) || perms.Has(s.Model.Perm("change"))
				} else {
					ok = perms.Has(s.Model.Perm("add"))
				}
			}
			if ok {
				got = append(got, a)
			}
		}
		if len(got) > 0 {
			out = append(out, Grant{Type: typ, Name: name, Actions: got})
		}
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client left
}
