package registry

import (
	"errors"
	"net/http"
)

// Action is what a request does to a repository, in the terms of Docker's token scopes.
type Action string

// Actions.
const (
	// ActionLogin is GET /v2/: only proves the client may talk to the registry.
	ActionLogin Action = "login"
	// ActionCatalog lists repositories (scope registry:catalog:*).
	ActionCatalog Action = "catalog"
	ActionPull    Action = "pull"
	ActionPush    Action = "push"
	ActionDelete  Action = "delete"
)

// AccessRequest describes one decision.
type AccessRequest struct {
	// Name is the repository (empty for login and catalog).
	Name   string
	Action Action
	// Exists tells whether a distribution serves Name; Private is its private flag.
	Exists  bool
	Private bool
	// From is the repository a cross-repository mount reads (pull needed there too).
	From string
}

// Access decides whether a request may act: nil allows, ErrUnauthorized asks for
// credentials (401, with a WWW-Authenticate challenge when it is a *Challenge), ErrDenied
// (possibly wrapped) refuses (403). It is where token authentication and RBAC plug in;
// an implementation with authentication must refuse anonymous pulls of private
// distributions.
type Access interface {
	Allow(r *http.Request, req AccessRequest) error
}

// Errors an Access returns.
var (
	ErrUnauthorized = errors.New("authentication required")
	ErrDenied       = errors.New("access denied")
)

// Challenge is an ErrUnauthorized that tells the client where to get credentials: its
// Header is sent as WWW-Authenticate with the 401.
type Challenge struct {
	Header string
}

func (c *Challenge) Error() string { return "authentication required" }

// Unwrap makes a Challenge an ErrUnauthorized.
func (c *Challenge) Unwrap() error { return ErrUnauthorized }

// OpenAccess allows every request: the registry as Pulp serves it with token
// authentication disabled (token_auth false, an operator's choice; package token is the
// default). Private distributions are served to anyone under it.
type OpenAccess struct{}

// Allow allows.
func (OpenAccess) Allow(*http.Request, AccessRequest) error { return nil }
