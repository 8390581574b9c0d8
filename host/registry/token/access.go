package token

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/registry"
)

// Access is the registry.Access of token authentication: requests carry a bearer token
// from Server, whose audience is the host the client talks to. Without a token only pulls
// of existing public distributions pass (as in Pulp); anything else gets a 401 whose
// challenge sends the client to the token endpoint.
type Access struct {
	Signer *Signer
	// Realm is the token endpoint's URL; empty derives it from the request
	// (scheme://Host/token).
	Realm string
	// Policy, when set, also admits requests whose Basic credentials the auth middleware
	// verified (the user is in the context), granting what a token would: Pulp's own
	// clients and scripts often skip the token dance.
	Policy *Server
}

// Allow implements registry.Access.
func (a *Access) Allow(r *http.Request, req registry.AccessRequest) error {
	if req.Action == registry.ActionPull && req.Exists && !req.Private {
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		if u := auth.UserFrom(r.Context()); u != nil && a.Policy != nil {
			return a.allowUser(r, u, req)
		}
		return a.challenge(r, req, "")
	}
	c, err := a.Signer.Verify(strings.TrimSpace(tok), r.Host)
	if err != nil {
		return a.challenge(r, req, "invalid_token")
	}
	if !allows(c, req) {
		return a.challenge(r, req, "insufficient_scope")
	}
	return nil
}

// allowUser decides for a user authenticated by Basic credentials: 403 when the user may
// not, as the credentials are known good.
func (a *Access) allowUser(r *http.Request, u *auth.User, req registry.AccessRequest) error {
	scope := "repository:" + req.Name + ":" + string(req.Action)
	switch req.Action {
	case registry.ActionLogin:
		return nil
	case registry.ActionCatalog:
		scope = "registry:catalog:*"
	}
	grants, err := a.Policy.grant(r.Context(), u, []string{scope})
	if err != nil {
		return err
	}
	if !allows(Claims{Access: grants}, req) {
		return fmt.Errorf("%w: %s may not %s %s", registry.ErrDenied, u.Username, req.Action, req.Name)
	}
	return nil
}

// allows reports whether c grants req.
func allows(c Claims, req registry.AccessRequest) bool {
	var allowed bool
	switch req.Action {
	case registry.ActionLogin:
		allowed = true
	case registry.ActionCatalog:
		allowed = c.Allows("registry", "catalog", "*")
	default:
		allowed = c.Allows("repository", req.Name, string(req.Action))
	}
	return allowed
}

// challenge is the 401 that names the realm, service and the scope the request needs.
func (a *Access) challenge(r *http.Request, req registry.AccessRequest, errCode string) error {
	realm := a.Realm
	if realm == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		realm = scheme + "://" + r.Host + "/token"
	}
	h := fmt.Sprintf("Bearer realm=%q,service=%q", realm, r.Host)
	switch req.Action {
	case registry.ActionLogin:
	case registry.ActionCatalog:
		h += `,scope="registry:catalog:*"`
	case registry.ActionPush:
		h += fmt.Sprintf(",scope=%q", "repository:"+req.Name+":pull,push")
	default:
		h += fmt.Sprintf(",scope=%q", "repository:"+req.Name+":"+string(req.Action))
	}
	if errCode != "" {
		h += fmt.Sprintf(",error=%q", errCode)
	}
	return &registry.Challenge{Header: h}
}
